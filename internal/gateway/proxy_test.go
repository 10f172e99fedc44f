package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveOne puts a backend behind a fresh gateway as solution s.
func serveOne(t *testing.T, h http.Handler) (*Gateway, *httptest.Server) {
	t.Helper()
	backend := httptest.NewServer(h)
	t.Cleanup(backend.Close)
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{strings.TrimPrefix(backend.URL, "http://")}}}})
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)
	return g, front
}

func do(t *testing.T, front *httptest.Server, method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, front.URL+path, body)
	req.Host = "s.localhost"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestFastPathHeaders(t *testing.T) {
	_, front := serveOne(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "no")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, strings.Join([]string{r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Hop"), r.Header.Get("X-End"), r.RequestURI}, "|"))
	}))
	resp, body := do(t, front, "GET", "/a%2Fb?q=1", nil, map[string]string{"Connection": "X-Hop", "X-Hop": "drop me", "X-End": "keep me", "X-Forwarded-For": "6.6.6.6"})
	if want := "s.localhost|127.0.0.1|s.localhost|http||keep me|/a%2Fb?q=1"; body != want {
		t.Errorf("the replica saw %q, want %q", body, want)
	}
	if resp.Header.Get("X-Secret-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("answer headers %v: hop-by-hop ones must go, others stay", resp.Header)
	}
}

func TestFastPathStreamsAndTrailers(t *testing.T) {
	_, front := serveOne(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			io.WriteString(w, "data: x\n\n")
			w.(http.Flusher).Flush()
			_ = i
		}
		w.Header().Set("X-Sum", "3")
	}))
	resp, body := do(t, front, "GET", "/", nil, nil)
	if strings.Count(body, "data: x") != 3 || resp.Trailer.Get("X-Sum") != "3" {
		t.Errorf("stream %q, trailer %v", body, resp.Trailer)
	}
}

// TestFastPathStaleConnection has the replica drop every connection after
// one answer, without saying so: a pooled connection is then dead, and the
// next request, with or without a body, must still get through.
func TestFastPathStaleConnection(t *testing.T) {
	var conns atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, strings.Repeat("k", int(min(n, 0)))+"ok")
			// Close after the answer, without Connection: close.
			go func() { time.Sleep(20 * time.Millisecond); r.Context().Value(connKey{}).(net.Conn).Close() }()
		}),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			conns.Add(1)
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{ln.Addr().String()}}}})
	front := httptest.NewServer(g)
	defer front.Close()
	for i, tc := range []struct {
		method string
		body   string
	}{{"GET", ""}, {"POST", "payload"}, {"GET", ""}, {"PUT", "more"}} {
		time.Sleep(50 * time.Millisecond) // the replica has closed the pooled connection by now
		var body io.Reader
		if tc.body != "" {
			body = bytes.NewBufferString(tc.body)
		}
		resp, got := do(t, front, tc.method, "/", body, nil)
		if resp.StatusCode != 200 || got != "ok" {
			t.Errorf("request %d (%s): %d %q, want 200 ok", i, tc.method, resp.StatusCode, got)
		}
	}
}

type connKey struct{}

func TestFastPathRefusedIsRetriedOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{addr}}}})
	front := httptest.NewServer(g)
	defer front.Close()
	// The replica starts listening just after the first attempt.
	go func() {
		time.Sleep(refusedRetryPause / 5)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "late") }))
	}()
	resp, body := do(t, front, "GET", "/", nil, nil)
	if resp.StatusCode != 200 || body != "late" {
		t.Errorf("got %d %q, want the retry to reach the replica", resp.StatusCode, body)
	}
}
