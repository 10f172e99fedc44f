package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// aimServer is one `aim serve` process; it can be stopped and started
// again on the same data directory and address, as an operator would.
type aimServer struct {
	bin, data, addr, prefix, config, logPath string
	// https, when set, is where aim serves HTTPS (--tls internal)
	https string
	// debug, when set, is where aim serves its pprof profiles
	debug string
	// extra arguments of the next start
	extra []string

	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time
}

// start runs aim serve and returns once /healthz answers, which aim does
// only after it has adopted every stored solution.
func (a *aimServer) start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(a.logPath), 0o755); err != nil {
		return err
	}
	logs, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logs.Close()
	fmt.Fprintf(logs, "--- bench/gateway: aim serve starts at %s\n", time.Now().Format(time.RFC3339Nano))
	a.cmd = exec.Command(a.bin, "serve", "--data", a.data, "--http", a.addr,
		"--client-config", a.config, "--docker-prefix", a.prefix, "--log-json")
	if a.https != "" {
		a.cmd.Args = append(a.cmd.Args, "--tls", "internal", "--https", a.https)
	}
	if a.debug != "" {
		a.cmd.Args = append(a.cmd.Args, "--debug-addr", a.debug)
	}
	a.cmd.Args = append(a.cmd.Args, a.extra...)
	a.cmd.Stdout, a.cmd.Stderr = logs, logs
	a.done = make(chan struct{})
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s serve: %w", a.bin, err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	return a.waitFor(ctx, "", "/healthz", 5*time.Minute)
}

func (a *aimServer) url() string { return "http://" + a.addr + "/" }

// waitFor polls path on host (the apex when empty) until it answers 200.
func (a *aimServer) waitFor(ctx context.Context, host, path string, limit time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+path, nil)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-a.done:
			return fmt.Errorf("aim serve exited (%v); its log: %s\n%s", a.cmd.ProcessState, a.logPath, tail(a.logPath, 30))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("http://%s%s (Host %q) did not answer 200 within %s (last: %v); aim's log: %s\n%s",
				a.addr, path, host, limit, err, a.logPath, tail(a.logPath, 30))
		}
	}
}

// waitTLS polls https://host/ on aim's HTTPS address until it answers
// 200; the first handshake has aim issue host's certificate.
func (a *aimServer) waitTLS(ctx context.Context, host string, limit time.Duration) error {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", a.https)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the certificate is what is being made
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/", nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("https://%s/ on %s did not answer 200 within %s (last: %v); aim's log: %s\n%s",
				host, a.https, limit, err, a.logPath, tail(a.logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// findCert finds the certificate and key aim's internal CA issued for
// host in certmagic's storage under data.
func findCert(data, host string) (cert, key string, err error) {
	err = filepath.WalkDir(filepath.Join(data, "certs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch d.Name() {
		case host + ".crt":
			cert = p
		case host + ".key":
			key = p
		}
		return nil
	})
	if err == nil && (cert == "" || key == "") {
		err = fmt.Errorf("no %s.crt and .key under %s", host, filepath.Join(data, "certs"))
	}
	return cert, key, err
}

// stop ends aim with SIGTERM, as an operator would: its solutions keep
// running and the next start adopts them.
func (a *aimServer) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
}

// token is the admin token aim wrote to the client configuration on its
// first start.
func (a *aimServer) token() (string, error) {
	b, err := os.ReadFile(a.config)
	if err != nil {
		return "", fmt.Errorf("reading aim's client configuration: %w", err)
	}
	var c struct{ Token string }
	if err := json.Unmarshal(b, &c); err != nil || c.Token == "" {
		return "", fmt.Errorf("no token in %s (%v)", a.config, err)
	}
	return c.Token, nil
}

// cli runs an aim client command against this server.
func (a *aimServer) cli(ctx context.Context, args ...string) error {
	tok, err := a.token()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.addr, "AIM_TOKEN="+tok)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("aim %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// memory is what aim's process holds.
type memory struct {
	RSS, HWM  int64 // bytes, /proc/<pid>/status VmRSS and VmHWM
	HeapInuse int64 // bytes, go_memstats_heap_inuse_bytes on /metrics; 0 if absent
}

func (a *aimServer) memory(ctx context.Context) (memory, error) {
	var m memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = kb << 10
		case "VmHWM":
			m.HWM = kb << 10
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.addr+"/metrics", nil)
	if err != nil {
		return m, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, fmt.Errorf("reading aim's /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc = bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			m.HeapInuse = int64(f)
		}
	}
	return m, sc.Err()
}

// cpuTime is the CPU time aim's process has used, user and system.
func (a *aimServer) cpuTime() (time.Duration, error) { return procCPU(a.cmd.Process.Pid) }

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// writeManifest writes the benchmark solution's aim.yaml into dir.
func writeManifest(dir, name, image string, bodyBytes int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	m := fmt.Sprintf(`name: %s
title: bench/gateway backend
components:
  - name: web
    image: %s
    env:
      BODY_BYTES: "%d"
    # Both proxies share the machine with it; a 1-core cap would make the
    # backend the bottleneck for both.
    resources:
      cpu: 2
      memory: 128Mi
scaling:
  # Awake for the whole run.
  idle: 24h
# High enough that no request is refused, if aim enforces limits.
limits:
  rps: 10000000
  burst: 10000000
`, name, image, bodyBytes)
	return os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(m), 0o644)
}
