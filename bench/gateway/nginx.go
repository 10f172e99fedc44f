package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// nginxConf is nginx tuned as a reverse proxy is in production: a worker
// per core, keep-alive to the upstream (without it every request would pay
// a connect), and keep-alive requests per connection raised so that
// neither side reconnects during a run. It sets the same forwarding
// headers aim's gateway sets, so both do the same work per request.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# bench/gateway: nginx as the peer of aim's gateway.
worker_processes auto;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events {
	worker_connections 4096;
}
http {
{{- if .AccessLog}}
	# A JSON line per request with the fields aim's --access-log writes.
	log_format aim escape=json '{"time":"$time_iso8601","msg":"request","solution":"$host","client":"$remote_addr",'
		'"method":"$request_method","host":"$host","uri":"$request_uri","proto":"$server_protocol","status":$status,'
		'"bytes_in":$request_length,"bytes_out":$bytes_sent,"duration_s":$request_time,'
		'"user_agent":"$http_user_agent","referer":"$http_referer"}';
	# Batched as aim batches its own (64 KiB, at least once a second).
	access_log {{.Dir}}/access.log aim buffer=64k flush=1s;
{{- else}}
	access_log off;
{{- end}}
	client_body_temp_path {{.Dir}}/client_body;
	proxy_temp_path {{.Dir}}/proxy;
	fastcgi_temp_path {{.Dir}}/fastcgi;
	uwsgi_temp_path {{.Dir}}/uwsgi;
	scgi_temp_path {{.Dir}}/scgi;
	keepalive_requests 1000000;
	upstream backend {
		server {{.Upstream}};
		keepalive 64;
		keepalive_requests 1000000;
	}
	server {
		listen {{.Listen}};
{{- if .TLSListen}}
		# HTTP/1.1 for clients without ALPN (wrk), HTTP/2 for h2load.
		listen {{.TLSListen}} ssl http2;
		ssl_certificate {{.Cert}};
		ssl_certificate_key {{.Key}};
		ssl_protocols TLSv1.2 TLSv1.3;
		# The cipher Go's server picks on hardware with AES, so that all
		# three encrypt alike whatever the client lists first.
		ssl_prefer_server_ciphers on;
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
		# Tickets are on by default; the cache serves TLS 1.2 clients.
		ssl_session_cache shared:SSL:10m;
		ssl_session_timeout 1h;
{{- end}}
		proxy_http_version 1.1;
		proxy_set_header Connection "";
		proxy_set_header Host $host;
		proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
		proxy_set_header X-Forwarded-Host $host;
		proxy_set_header X-Forwarded-Proto $scheme;
		location / {
			proxy_pass http://backend;
		}
		# A 1 MiB answer is passed on as it comes rather than spooled to
		# a temporary file, as aim does.
		location /big {
			proxy_pass http://backend;
			proxy_max_temp_file_size 0;
		}
		# A stream (a model's tokens) is unbuffered, as nginx's
		# documentation advises for server-sent events.
		location /stream {
			proxy_pass http://backend;
			proxy_buffering off;
		}
	}
}
`))

// nginx is a private nginx process: its own prefix, configuration and
// pid file in a temporary directory, in the foreground, so that the
// system's nginx (configured or running) is never touched.
type nginx struct {
	cmd     *exec.Cmd
	dir     string
	addr    string // where it listens
	tlsAddr string // where it listens for HTTPS, if it does
	logs    bytes.Buffer
	done    chan struct{} // closed once the master has exited
}

// proxyOpts is what each peer is started with.
type proxyOpts struct {
	Listen    string // plain HTTP
	TLSListen string // HTTPS and HTTP/2; empty for none
	Cert, Key string // PEM files of the certificate aim issued
	Upstream  string
	AccessLog bool
}

func startNginx(ctx context.Context, dir string, o proxyOpts) (*nginx, error) {
	listen := o.Listen
	// The workers run as an unprivileged user and must reach the temp
	// paths under dir.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	var conf bytes.Buffer
	if err := nginxConf.Execute(&conf, map[string]any{"Dir": dir, "Listen": listen, "Upstream": o.Upstream, "AccessLog": o.AccessLog,
		"TLSListen": o.TLSListen, "Cert": o.Cert, "Key": o.Key}); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{dir: dir, addr: listen, tlsAddr: o.TLSListen, done: make(chan struct{})}
	// -e keeps even the first error (before the configuration is read)
	// out of /var/log/nginx.
	n.cmd = exec.Command("nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = &n.logs, &n.logs
	// Its own process group, so that the workers can go with the master
	// if it has to be killed.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("nginx exited (%v):\n%s%s", n.cmd.ProcessState, n.logs.String(), n.errorLog())
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("nginx did not answer 200 on %s within 10s (last error: %v):\n%s", listen, err, n.errorLog())
		}
	}
}

func (n *nginx) url() string { return "http://" + n.addr + "/" }

func (n *nginx) cpuTime() (time.Duration, error) { return procCPU(n.cmd.Process.Pid) }

func (n *nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// stop asks the master for a fast shutdown (SIGTERM) and kills the
// process group if it has not gone within 5s.
func (n *nginx) stop() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	<-n.done
}

// version is `nginx -v`'s answer.
func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return string(bytes.TrimSpace(out))
}
