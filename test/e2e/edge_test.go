package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// edgeRequest sends one request to a solution through the gateway.
func edgeRequest(t *testing.T, a *Aim, cl *http.Client, method, sol, path string, body io.Reader, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.Addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = sol + ".localhost"
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := cl.Do(req)
	if err != nil {
		return -1, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestLimits floods one solution past its rate limit while another keeps
// answering, and checks the body, header and slow-client limits, the
// metrics they leave and the access log.
func TestLimits(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	a := StartAim(t, "--read-header-timeout", "1s", "--access-log", logPath)
	a.MustCLI("deploy", "-q", writeSolution(t, "name: flood\ncomponents:\n  - name: web\n    image: "+TestImage+"\nlimits: {rps: 5, burst: 5, body: 1KiB}\n", nil))
	a.MustCLI("deploy", "-q", writeSolution(t, "name: calm\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))
	cl := &http.Client{Timeout: 20 * time.Second}

	t.Run("429 past the rate, with Retry-After, while another solution answers", func(t *testing.T) {
		var ok, limited, other atomic.Int64
		var retry atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, h, body := edgeRequest(t, a, cl, "GET", "flood", "/whoami", nil, nil)
					switch code {
					case 200:
						ok.Add(1)
					case 429:
						limited.Add(1)
						if !strings.Contains(body, "5 requests a second") {
							t.Errorf("429 body does not say the limit: %s", body)
						}
						retry.Store(h.Get("Retry-After"))
					default:
						other.Add(1)
					}
				}
			}()
		}
		floodStart := time.Now()
		calm := map[int]int{}
		for range 50 {
			code, _, _ := edgeRequest(t, a, cl, "GET", "calm", "/whoami", nil, nil)
			calm[code]++
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		flood := time.Since(floodStart)
		if calm[200] != 50 {
			t.Errorf("the calm solution answered %v while the other was flooded, want 50×200", calm)
		}
		if limited.Load() == 0 || other.Load() != 0 {
			t.Errorf("flood: %d×200, %d×429, %d other; want 429s and nothing else", ok.Load(), limited.Load(), other.Load())
		}
		// 5 at once, then 5 a second for as long as the flood lasted.
		if n, most := ok.Load(), 5+int64(5*flood.Seconds()+1); n < 5 || n > most {
			t.Errorf("%d flood requests admitted in %s, want 5 + 5/s (at most %d)", n, flood.Round(time.Millisecond), most)
		}
		if r, _ := retry.Load().(string); r == "" {
			t.Error("429 without Retry-After")
		} else if n, err := strconv.Atoi(r); err != nil || n < 1 {
			t.Errorf("Retry-After %q, want whole seconds", r)
		}
		m := a.Metrics()
		want := fmt.Sprintf(`aim_requests_refused_total{reason="rate_limited",solution="flood"} %d`, limited.Load())
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	})

	time.Sleep(1200 * time.Millisecond) // let the flood's bucket refill
	t.Run("413 past the body limit, declared or streamed", func(t *testing.T) {
		code, _, body := edgeRequest(t, a, cl, "POST", "flood", "/echo", bytes.NewReader(make([]byte, 1024)), nil)
		if code != 200 || !strings.Contains(body, "read 1024") {
			t.Errorf("a body at the limit: %d %s", code, body)
		}
		code, _, body = edgeRequest(t, a, cl, "POST", "flood", "/echo", bytes.NewReader(make([]byte, 1025)), nil)
		if code != 413 || !strings.Contains(body, "1024 bytes") {
			t.Errorf("a declared body over the limit: %d %s, want 413 naming the limit", code, body)
		}
		// No Content-Length: the limit trips while the body streams.
		code, _, body = edgeRequest(t, a, cl, "POST", "flood", "/echo", io.MultiReader(bytes.NewReader(make([]byte, 4096))), nil)
		if code != 413 || !strings.Contains(body, "1024 bytes") {
			t.Errorf("a streamed body over the limit: %d %s, want 413 naming the limit", code, body)
		}
	})

	t.Run("431 for huge headers", func(t *testing.T) {
		h := http.Header{"X-Big": {strings.Repeat("x", 64<<10)}}
		code, _, body := edgeRequest(t, a, cl, "GET", "calm", "/whoami", nil, h)
		if code != 431 {
			t.Errorf("64 KiB of headers: %d %s, want 431", code, body)
		}
	})

	t.Run("a slow client is cut off", func(t *testing.T) {
		c, err := net.Dial("tcp", a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Half a request, then silence, as slowloris does.
		if _, err := io.WriteString(c, "GET /whoami HTTP/1.1\r\nHost: calm.localhost\r\nX-A: 1\r\n"); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(bufio.NewReader(c))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the connection was still open after %s; --read-header-timeout is 1s", time.Since(start))
		}
		// Meanwhile others are served.
		if code, _, _ := edgeRequest(t, a, cl, "GET", "calm", "/whoami", nil, nil); code != 200 {
			t.Errorf("calm answered %d", code)
		}
	})

	t.Run("per-solution metrics and access log", func(t *testing.T) {
		m := a.Metrics()
		for _, want := range []string{
			`aim_http_requests_total{code="2xx",solution="calm"}`,
			`aim_http_requests_total{code="4xx",solution="flood"}`,
			`aim_http_request_duration_seconds_bucket{solution="calm",le="0.1"}`,
			`aim_http_response_bytes_total{solution="calm"}`,
			`aim_http_requests_in_flight{solution="calm"} 0`,
			`aim_requests_refused_total{reason="body_too_large",solution="flood"} 2`,
			`go_goroutines`, `process_resident_memory_bytes`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		// 1024 bytes accepted, and what was read of the streamed body
		// before the limit tripped.
		if in := metricValue(m, `aim_http_request_bytes_total{solution="flood"}`); in < 1024 {
			t.Errorf("aim_http_request_bytes_total for flood = %v, want at least the 1024 bytes accepted", in)
		}
		// Lines are written in batches at least once a second: wait for
		// the one this test made.
		var data []byte
		var seen bool
		for deadline := time.Now().Add(10 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			var err error
			if data, err = os.ReadFile(logPath); err != nil {
				t.Fatal(err)
			}
			complete := data[:bytes.LastIndexByte(data, '\n')+1] // a batch may be half written
			for line := range strings.SplitSeq(strings.TrimSpace(string(complete)), "\n") {
				if line == "" {
					continue
				}
				var e struct {
					Msg, Solution, Client, Method, URI string
					Status                             int
					BytesOut                           int64 `json:"bytes_out"`
				}
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("access log line is not JSON: %v: %s", err, line)
				}
				if e.Solution == "calm" && e.Status == 200 && e.URI == "/whoami" && e.Client == "127.0.0.1" && e.BytesOut > 0 {
					seen = true
				}
			}
		}
		if !seen {
			t.Errorf("no access log line for a calm GET /whoami from 127.0.0.1:\n%.2000s", data)
		}
	})
}

// TestStreamsOutliveTimeouts checks that WebSockets and event streams are
// exempt from the read and write timeouts that end ordinary requests.
func TestStreamsOutliveTimeouts(t *testing.T) {
	a := StartAim(t, "--read-timeout", "1s", "--write-timeout", "1s")
	a.MustCLI("deploy", "-q", writeSolution(t, "name: streams\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))
	cl := &http.Client{Timeout: 20 * time.Second}

	code, _, body := edgeRequest(t, a, cl, "GET", "streams", "/sleep?d=2s", nil, nil)
	if code == 200 {
		t.Errorf("an answer slower than --write-timeout went through: %d %s", code, body)
	}
	code, _, body = edgeRequest(t, a, cl, "GET", "streams", "/sse?n=25", nil, http.Header{"Accept": {"text/event-stream"}})
	if code != 200 || strings.Count(body, "data: ") != 25 {
		t.Errorf("an event stream of 2.5s under a 1s write timeout: %d, %d events", code, strings.Count(body, "data: "))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+a.Addr+"/ws", &websocket.DialOptions{Host: "streams.localhost"})
	if err != nil {
		t.Fatalf("WebSocket through the gateway: %v", err)
	}
	defer ws.CloseNow()
	time.Sleep(2500 * time.Millisecond) // past both timeouts
	if err := ws.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatalf("writing after the timeouts: %v", err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "still here" {
		t.Fatalf("a WebSocket open longer than --read-timeout and --write-timeout broke: %q %v", msg, err)
	}
}

// metricValue returns the value of the series named by its full name and
// labels in a /metrics page, or -1.
func metricValue(page, series string) float64 {
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
