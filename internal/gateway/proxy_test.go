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

// front is the gateway as clients reach it.
type front struct {
	URL    string
	client *http.Client
	srv    *Server // nil for net/http alone
	h2     bool    // HTTP/2 over TLS
}

func (f *front) Client() *http.Client { return f.client }

// fronts are the two ways to serve a gateway: net/http alone, and the
// Server with its fast path, which hands the rest to net/http. Every
// proxy test runs through both.
var fronts = []struct {
	name  string
	start func(t *testing.T, g *Gateway) *front
}{
	{"net-http", func(t *testing.T, g *Gateway) *front {
		s := httptest.NewServer(g)
		t.Cleanup(s.Close)
		return &front{URL: s.URL, client: s.Client()}
	}},
	{"fast", func(t *testing.T, g *Gateway) *front {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(g, ServerConfig{})
		go s.Serve(ln)
		t.Cleanup(func() { s.Close() })
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return &front{URL: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}, srv: s}
	}},
	{"h2", func(t *testing.T, g *Gateway) *front {
		s := httptest.NewUnstartedServer(nil)
		s.Config = NewServer(g, ServerConfig{}).HTTP
		s.EnableHTTP2 = true
		s.StartTLS()
		t.Cleanup(s.Close)
		return &front{URL: s.URL, client: s.Client(), h2: true}
	}},
}

// eachFront runs f once per front.
func eachFront(t *testing.T, f func(t *testing.T, start func(*testing.T, *Gateway) *front)) {
	for _, fr := range fronts {
		t.Run(fr.name, func(t *testing.T) { f(t, fr.start) })
	}
}

// serveOne puts a backend behind a fresh gateway as solution s.
func serveOne(t *testing.T, start func(*testing.T, *Gateway) *front, h http.Handler) (*Gateway, *front) {
	t.Helper()
	backend := httptest.NewServer(h)
	t.Cleanup(backend.Close)
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{strings.TrimPrefix(backend.URL, "http://")}}}})
	return g, start(t, g)
}

func do(t *testing.T, front *front, method, path string, body io.Reader, hdr map[string]string) (*http.Response, string) {
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

func TestProxyHeaders(t *testing.T) { eachFront(t, testHeaders) }

func testHeaders(t *testing.T, start func(*testing.T, *Gateway) *front) {
	_, front := serveOne(t, start, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Secret-Hop")
		w.Header().Set("X-Secret-Hop", "no")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, strings.Join([]string{r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Hop"), r.Header.Get("X-End"), r.RequestURI}, "|"))
	}))
	hdr := map[string]string{"Connection": "X-Hop", "X-Hop": "drop me", "X-End": "keep me", "X-Forwarded-For": "6.6.6.6"}
	want := "s.localhost|127.0.0.1|s.localhost|http||keep me|/a%2Fb?q=1"
	if front.h2 {
		// HTTP/2 has no Connection header (RFC 9113, 8.2.2).
		delete(hdr, "Connection")
		delete(hdr, "X-Hop")
		want = strings.Replace(want, "|http|", "|https|", 1)
	}
	resp, body := do(t, front, "GET", "/a%2Fb?q=1", nil, hdr)
	if body != want {
		t.Errorf("the replica saw %q, want %q", body, want)
	}
	if resp.Header.Get("X-Secret-Hop") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("answer headers %v: hop-by-hop ones must go, others stay", resp.Header)
	}
}

func TestProxyStreamsAndTrailers(t *testing.T) { eachFront(t, testStreamsAndTrailers) }

func testStreamsAndTrailers(t *testing.T, start func(*testing.T, *Gateway) *front) {
	_, front := serveOne(t, start, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
func TestProxyStaleConnection(t *testing.T) { eachFront(t, testStaleConnection) }

func testStaleConnection(t *testing.T, start func(*testing.T, *Gateway) *front) {
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
	front := start(t, g)
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

func TestProxyRefusedIsRetriedOnce(t *testing.T) { eachFront(t, testRefusedIsRetriedOnce) }

func testRefusedIsRetriedOnce(t *testing.T, start func(*testing.T, *Gateway) *front) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{addr}}}})
	front := start(t, g)
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

func TestProxyClientLeaves(t *testing.T) { eachFront(t, testClientLeaves) }

// testClientLeaves: a client that gives up on a long request makes the
// gateway close the replica's connection, so that the replica's server
// cancels its work; on net/http's path the gateway learns it from the
// request's context, which it looks at when the replica is silent.
func testClientLeaves(t *testing.T, start func(*testing.T, *Gateway) *front) {
	canceled := make(chan struct{}, 1)
	_, front := serveOne(t, start, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(30 * time.Second):
		}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", front.URL+"/forever", nil)
	req.Host = "s.localhost"
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	if resp, err := front.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an answer (%d) to a request its client gave up", resp.StatusCode)
	}
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica kept working for a client that left")
	}
}
