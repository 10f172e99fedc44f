package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tlsLoad opens a new TLS connection per request, as a visitor arriving
// does: a full handshake each time, or one resumed from the ticket of the
// worker's previous connection (TLS 1.3). wrk and h2load keep their
// connections, and openssl s_time speaks no HTTP/1.1 keep-alive and runs
// one connection at a time; this client drives every proxy the same way.
// It runs as a child process (-tlsload) so that taskset pins it like the
// other tools.
type tlsLoad struct {
	Addr       string // where to connect
	ServerName string // SNI and Host
	Path       string
	Resume     bool
	Workers    int // concurrent connections
	Duration   time.Duration
}

func (t tlsLoad) args() []string {
	return []string{"-tlsload", t.Addr, "-tlsload-sni", t.ServerName, "-tlsload-path", t.Path,
		"-tlsload-resume=" + strconv.FormatBool(t.Resume), "-connections", strconv.Itoa(t.Workers),
		"-duration", t.Duration.String()}
}

// runTLS runs the client pinned to l.CPUs and reads its report.
func (l load) runTLS(ctx context.Context, t tlsLoad) (result, error) {
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	args := append([]string{"-c", l.CPUs, self}, t.args()...)
	out, err := exec.CommandContext(ctx, "taskset", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("taskset %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	r, resumed, err := parseTLSLoad(string(out))
	if err != nil {
		return r, fmt.Errorf("reading the TLS client's report: %w\n%s", err, out)
	}
	if err := r.failed(); err != nil {
		return r, fmt.Errorf("%s: %w", t.Addr, err)
	}
	// A proxy that never resumed did full handshakes: not what was asked.
	if t.Resume && resumed < r.Requests*9/10 {
		return r, fmt.Errorf("%s: only %d of %d connections resumed a session", t.Addr, resumed, r.Requests)
	}
	if !t.Resume && resumed > 0 {
		return r, fmt.Errorf("%s: %d connections resumed without being offered a ticket", t.Addr, resumed)
	}
	return r, nil
}

// drive is the client itself: it writes its report to w.
func (t tlsLoad) drive(ctx context.Context, w io.Writer) error {
	req := []byte("GET " + t.Path + " HTTP/1.1\r\nHost: " + t.ServerName + "\r\nConnection: close\r\n\r\n")
	var mu sync.Mutex
	var lat []time.Duration
	var resumed, non2xx atomic.Int64
	var firstErr atomic.Value
	var errs atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, t.Duration)
	defer cancel()
	start := time.Now()
	end := start.Add(t.Duration)
	var wg sync.WaitGroup
	for range t.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: true, //nolint:gosec // a benchmark of the server's side
				MinVersion: tls.VersionTLS13, CurvePreferences: []tls.CurveID{tls.X25519}, NextProtos: []string{"http/1.1"}}
			if t.Resume {
				cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			}
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				res, status, err := t.once(ctx, cfg, req)
				// The dial's deadline can pass before the context says
				// so: an error at or after the end is the end.
				if ctx.Err() != nil || !time.Now().Before(end) {
					break
				}
				if err != nil {
					if errs.Add(1) == 1 {
						firstErr.Store(fmt.Sprintf("after %s: %v", time.Since(start).Round(time.Millisecond), err))
					}
					continue
				}
				mine = append(mine, time.Since(t0))
				if res {
					resumed.Add(1)
				}
				if status/100 != 2 {
					non2xx.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Fprintf(w, "tlsload: %d connections in %.2fs, %.2f conn/s, %d resumed, %d non-2xx, %d errors\n",
		len(lat), el.Seconds(), float64(len(lat))/el.Seconds(), resumed.Load(), non2xx.Load(), errs.Load())
	fmt.Fprintf(w, "latency: p50 %dus, p99 %dus\n", percentile(lat, 0.5).Microseconds(), percentile(lat, 0.99).Microseconds())
	if e, ok := firstErr.Load().(string); ok {
		fmt.Fprintf(w, "first error: %s\n", e)
	}
	return nil
}

// once is one connection: handshake, request, the whole answer.
func (t tlsLoad) once(ctx context.Context, cfg *tls.Config, req []byte) (resumed bool, status int, err error) {
	d := net.Dialer{}
	raw, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return false, 0, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.HandshakeContext(ctx); err != nil {
		return false, 0, err
	}
	if _, err := c.Write(req); err != nil {
		return false, 0, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return false, 0, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return false, 0, fmt.Errorf("status line %q", line)
	}
	status, _ = strconv.Atoi(f[1])
	// Connection: close: the answer ends with the connection, and the
	// ticket (sent after the handshake) has been read on the way.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return false, 0, err
	}
	return c.ConnectionState().DidResume, status, nil
}

// parseTLSLoad reads drive's report.
func parseTLSLoad(out string) (r result, resumed int64, err error) {
	var haveSum, haveLat bool
	var errCount int64
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "tlsload: "):
			var el, rate float64
			if _, err := fmt.Sscanf(line, "tlsload: %d connections in %fs, %f conn/s, %d resumed, %d non-2xx, %d errors",
				&r.Requests, &el, &rate, &resumed, &r.Non2xx, &errCount); err != nil {
				return r, 0, fmt.Errorf("line %q: %w", line, err)
			}
			r.RPS = rate
			haveSum = true
		case strings.HasPrefix(line, "latency: "):
			var a, b int64
			if _, err := fmt.Sscanf(line, "latency: p50 %dus, p99 %dus", &a, &b); err != nil {
				return r, 0, fmt.Errorf("line %q: %w", line, err)
			}
			r.P50, r.P99 = time.Duration(a)*time.Microsecond, time.Duration(b)*time.Microsecond
			haveLat = true
		case strings.HasPrefix(line, "first error: "):
			r.Errors = fmt.Sprintf("%d errors, the first: %s", errCount, strings.TrimPrefix(line, "first error: "))
		}
	}
	if !haveSum || !haveLat {
		return r, 0, fmt.Errorf("no \"tlsload:\" or \"latency:\" line")
	}
	if errCount > 0 && r.Errors == "" {
		r.Errors = fmt.Sprintf("%d errors", errCount)
	}
	return r, resumed, nil
}
