package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// haproxyConf is HAProxy tuned as its documentation advises for a reverse
// proxy: a thread per core (nbthread), idle server connections shared by
// every client (http-reuse always), keep-alive on both sides, and logs
// sent to a syslog receiver over UDP, which never blocks a thread on a
// disk. It sets the same forwarding headers aim's gateway sets.
var haproxyConf = template.Must(template.New("haproxy.cfg").Parse(`# bench/gateway: HAProxy as the peer of aim's gateway.
global
	nbthread {{.Threads}}
	# As nginx's worker_connections; within the open-files limit.
	maxconn 4096
	# The cipher Go's server picks on hardware with AES (HAProxy prefers
	# its own order), so that all three encrypt alike.
	ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
{{- if .LogAddr}}
	log {{.LogAddr}} len 4096 format raw local0
{{- end}}
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 60s
	option http-keep-alive
	# No line for a connection closed before its first request (as
	# wrk leaves some at the end of a run), as the documentation advises.
	option dontlognull
{{- if .LogAddr}}
	log global
{{- end}}
frontend bench
	bind {{.Listen}}
{{- if .TLSListen}}
	bind {{.TLSListen}} ssl crt {{.PEM}} alpn h2,http/1.1
{{- end}}
{{- if .LogAddr}}
	capture request header Host len 64
	capture request header User-Agent len 128
	capture request header Referer len 128
	# The fields aim's --access-log writes.
	log-format "%tr %ci %HM %HU %HV %ST %U %B %Ta %hr"
{{- end}}
	option forwardfor
	http-request set-header X-Forwarded-Host %[req.hdr(host)]
	http-request set-header X-Forwarded-Proto https if { ssl_fc }
	http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
	default_backend backend
backend backend
	http-reuse always
	server backend {{.Upstream}}
`))

// haproxy is a private HAProxy process in the foreground, with its own
// configuration in a temporary directory.
type haproxy struct {
	cmd           *exec.Cmd
	dir           string
	addr, tlsAddr string
	logs          bytes.Buffer
	done          chan struct{}
	sink          *logSink // nil without access logs
}

func startHAProxy(ctx context.Context, dir string, o proxyOpts) (*haproxy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h := &haproxy{dir: dir, addr: o.Listen, tlsAddr: o.TLSListen, done: make(chan struct{})}
	data := map[string]any{"Threads": runtime.NumCPU(), "Listen": o.Listen, "TLSListen": o.TLSListen, "Upstream": o.Upstream}
	if o.TLSListen != "" {
		// HAProxy takes the certificate and its key in one file.
		pem := filepath.Join(dir, "cert.pem")
		if err := concat(pem, o.Cert, o.Key); err != nil {
			return nil, err
		}
		data["PEM"] = pem
	}
	if o.AccessLog {
		s, err := startLogSink(filepath.Join(dir, "access.log"))
		if err != nil {
			return nil, err
		}
		h.sink = s
		data["LogAddr"] = s.addr()
	}
	var conf bytes.Buffer
	if err := haproxyConf.Execute(&conf, data); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	h.cmd = exec.Command("haproxy", "-db", "-f", cfg)
	h.cmd.Stdout, h.cmd.Stderr = &h.logs, &h.logs
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting haproxy: %w", err)
	}
	go func() { _ = h.cmd.Wait(); close(h.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + o.Listen + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return h, nil
			}
		}
		select {
		case <-h.done:
			return nil, fmt.Errorf("haproxy exited (%v):\n%s", h.cmd.ProcessState, h.logs.String())
		case <-ctx.Done():
			h.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			h.stop()
			return nil, fmt.Errorf("haproxy did not answer 200 on %s within 10s (last error: %v):\n%s", o.Listen, err, h.logs.String())
		}
	}
}

func (h *haproxy) url() string { return "http://" + h.addr + "/" }

func (h *haproxy) cpuTime() (time.Duration, error) { return procCPU(h.cmd.Process.Pid) }

func (h *haproxy) accessLog() string {
	if h.sink == nil {
		return ""
	}
	return h.sink.path
}

// stop ends HAProxy with SIGUSR1 (a soft stop) and kills it if it has
// not gone within 5s.
func (h *haproxy) stop() {
	_ = h.cmd.Process.Signal(syscall.SIGUSR1)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
	}
	if h.sink != nil {
		h.sink.close()
	}
}

func haproxyVersion() string {
	out, _ := exec.Command("haproxy", "-v").Output()
	first, _, _ := strings.Cut(string(out), " - ")
	return strings.TrimSpace(first)
}

// logSink is the syslog receiver HAProxy logs to: a datagram per line,
// written to a file with a buffer.
type logSink struct {
	conn net.PacketConn
	path string
	done chan struct{}
}

func startLogSink(path string) (*logSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &logSink{conn: c, path: path, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer f.Close()
		w := bufio.NewWriterSize(f, 64<<10)
		defer w.Flush()
		buf := make([]byte, 8192)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					fmt.Fprintln(os.Stderr, "bench/gateway: haproxy's log:", err)
				}
				return
			}
			_, _ = w.Write(bytes.TrimRight(buf[:n], "\n"))
			_ = w.WriteByte('\n')
		}
	}()
	return s, nil
}

func (s *logSink) addr() string { return s.conn.LocalAddr().String() }

func (s *logSink) close() { s.conn.Close(); <-s.done }

// concat writes the files' contents one after the other into dst.
func concat(dst string, srcs ...string) error {
	var b []byte
	for _, s := range srcs {
		c, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		b = append(b, c...)
		if len(c) > 0 && c[len(c)-1] != '\n' {
			b = append(b, '\n')
		}
	}
	return os.WriteFile(dst, b, 0o600)
}
