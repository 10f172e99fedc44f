package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fastServer serves g with a Server on a loopback port, and counts the
// connections handed to net/http.
func fastServer(t *testing.T, g *Gateway, cfg ...ServerConfig) (addr string, s *Server, handoffs *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s = NewServer(g, append(cfg, ServerConfig{})[0])
	handoffs = new(atomic.Int64)
	s.HTTP.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			handoffs.Add(1)
		}
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return ln.Addr().String(), s, handoffs
}

// countedBy returns how many requests of solution "s" in status class
// class the gateway counted, once it counted want or after 5s: requests
// are counted once answered, a moment after the client has the answer.
func countedBy(g *Gateway, class int, want uint64) uint64 {
	c := &g.Routes.lookup("s").stats.byClass[class]
	for deadline := time.Now().Add(5 * time.Second); c.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	return c.Load()
}

func routeTo(g *Gateway, addr string, limits Limits) {
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Limits: limits, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{addr}}}})
}

// rawConn is a client connection that writes heads by hand.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	if _, ok := tlsAddrs.Load(addr); ok {
		return dialTLS(t, addr, "http/1.1")
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one answer to a request of the given method.
func (rc *rawConn) read(method string) (*http.Response, string) {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	for err == nil && resp.StatusCode < 200 { // interim answers
		resp, err = http.ReadResponse(rc.br, &http.Request{Method: method})
	}
	if err != nil {
		rc.t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		rc.t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

func echoBackend(t *testing.T) string {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", "5")
			return
		}
		io.WriteString(w, r.Method+" "+r.RequestURI+" "+string(body))
	}))
	t.Cleanup(b.Close)
	return strings.TrimPrefix(b.URL, "http://")
}

func TestServerFastPathAndHandOff(t *testing.T) { overBoth(t, testServerFastPathAndHandOff) }

func testServerFastPathAndHandOff(t *testing.T, serve serveFunc) {
	var logs syncBuffer
	g := New(Config{AccessLog: slog.New(slog.NewJSONHandler(&logs, nil))})
	routeTo(g, echoBackend(t), Limits{})
	addr, _, handoffs := serve(t, g)
	rc := dialRaw(t, addr)

	rc.send("GET /one?x=1 HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	if _, body := rc.read("GET"); body != "GET /one?x=1 " {
		t.Errorf("fast GET: %q", body)
	}
	rc.send("HEAD /h HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	if resp, body := rc.read("HEAD"); resp.ContentLength != 5 || body != "" {
		t.Errorf("fast HEAD: length %d body %q", resp.ContentLength, body)
	}
	// Two requests in one write: answered in order.
	rc.send("GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	_, a := rc.read("GET")
	_, b := rc.read("GET")
	if a != "GET /a " || b != "GET /b " {
		t.Errorf("pipelined: %q, %q", a, b)
	}
	if n := handoffs.Load(); n != 0 {
		t.Fatalf("%d connections handed to net/http for requests the fast path takes", n)
	}
	if c := countedBy(g, 2, 4); c != 4 {
		t.Errorf("2xx counted %d times, want 4", c)
	}
	var line struct {
		Method, URI string
		Status      int
		Client      string
	}
	if err := json.Unmarshal(bytes.SplitN([]byte(logs.String()), []byte("\n"), 2)[0], &line); err != nil || line.Method != "GET" || line.URI != "/one?x=1" || line.Status != 200 || line.Client != "127.0.0.1" {
		t.Errorf("access log %q (%v)", logs.String(), err)
	}

	// A small body with its length: the fast path too; the body may
	// come after the head.
	rc.send("POST /p HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 4\r\n\r\nbody")
	if _, body := rc.read("POST"); body != "POST /p body" {
		t.Errorf("fast POST: %q", body)
	}
	rc.send("PUT /late HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	rc.send("later")
	if _, body := rc.read("PUT"); body != "PUT /late later" {
		t.Errorf("fast PUT, its body sent later: %q", body)
	}
	if n := handoffs.Load(); n != 0 {
		t.Fatalf("%d connections handed to net/http for bodies the fast path takes", n)
	}

	// A chunked body: net/http serves it, and the rest of the connection.
	rc.send("POST /p HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n")
	if _, body := rc.read("POST"); body != "POST /p body" {
		t.Errorf("POST after hand-off: %q", body)
	}
	rc.send("GET /after HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	if _, body := rc.read("GET"); body != "GET /after " {
		t.Errorf("GET after hand-off: %q", body)
	}
	if n := handoffs.Load(); n != 1 {
		t.Errorf("%d hand-offs, want 1", n)
	}
}

// TestServerBytesArriveWhileBusy sends what the fast path's connection
// loop must not miss although it never reads twice in a row: a head in
// parts, a body after its head, and a pipelined request that arrives
// while the one before it is still with the replica. A missed arrival
// would leave the client waiting for its deadline.
func TestServerBytesArriveWhileBusy(t *testing.T) { overBoth(t, testServerBytesArriveWhileBusy) }

func testServerBytesArriveWhileBusy(t *testing.T, serve serveFunc) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(100 * time.Millisecond)
		}
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.URL.Path+" "+string(body))
	}))
	t.Cleanup(b.Close)
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, handoffs := serve(t, g)
	rc := dialRaw(t, addr)
	pause := func() { time.Sleep(30 * time.Millisecond) }

	rc.send("GET /parts HTTP/1.1\r\nHo")
	pause()
	rc.send("st: s.localhost\r\n")
	pause()
	rc.send("\r\n")
	if _, body := rc.read("GET"); body != "/parts " {
		t.Errorf("head in parts: %q", body)
	}

	rc.send("GET /slow HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	pause() // the first request is with the replica now
	rc.send("POST /next HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 2\r\n\r\n")
	pause()
	rc.send("ok")
	_, first := rc.read("GET")
	_, second := rc.read("POST")
	if first != "/slow " || second != "/next ok" {
		t.Errorf("pipelined while busy: %q, %q", first, second)
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs, want none", n)
	}
}

// TestServerClientLeavesSlowRequest checks that a client leaving a long
// request on the fast path closes the replica's connection (the replica's
// server cancels its work), and that a replica silent for longer than the
// fast path's stall check still answers a client that waits.
func TestServerClientLeavesSlowRequest(t *testing.T) { overBoth(t, testServerClientLeavesSlowRequest) }

func testServerClientLeavesSlowRequest(t *testing.T, serve serveFunc) {
	canceled := make(chan struct{}, 1)
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/forever":
			select {
			case <-r.Context().Done():
				canceled <- struct{}{}
			case <-time.After(30 * time.Second):
			}
		case "/late":
			time.Sleep(stallCheck + stallCheck/2)
			io.WriteString(w, "late")
		}
	}))
	t.Cleanup(b.Close)
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, handoffs := serve(t, g)

	waiting := dialRaw(t, addr)
	waiting.send("GET /late HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	leaving := dialRaw(t, addr)
	leaving.send("GET /forever HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	leaving.c.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica kept working for a client that left")
	}
	if _, body := waiting.read("GET"); body != "late" {
		t.Errorf("a slow answer: %q", body)
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs, want none", n)
	}
	if n := countedBy(g, 4, 1); n != 1 {
		t.Errorf("4xx counted %d times, want 1 (499 for the client that left)", n)
	}
}

func TestServerHandsOff(t *testing.T) { overBoth(t, testServerHandsOff) }

func testServerHandsOff(t *testing.T, serve serveFunc) {
	backend := echoBackend(t)
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	tests := []struct {
		name   string
		route  func(g *Gateway)
		head   string
		status int
	}{
		{"apex", func(g *Gateway) { routeTo(g, backend, Limits{}) }, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
		{"unknown solution", func(g *Gateway) { routeTo(g, backend, Limits{}) }, "GET / HTTP/1.1\r\nHost: nope.localhost\r\n\r\n", 404},
		{"asleep, no waker", func(g *Gateway) {
			g.Routes.Set(RouteSpec{Name: "s", State: StateSleeping, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})
		}, "GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n", 503},
		{"failed", func(g *Gateway) {
			g.Routes.Set(RouteSpec{Name: "s", State: StateFailed, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})
		}, "GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n", 502},
		{"replica down", func(g *Gateway) { routeTo(g, downAddr, Limits{}) }, "GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n", 502},
		{"escaped path", func(g *Gateway) { routeTo(g, backend, Limits{}) }, "GET /a%20b HTTP/1.1\r\nHost: s.localhost\r\n\r\n", 200},
		{"HTTP/1.0", func(g *Gateway) { routeTo(g, backend, Limits{}) }, "GET / HTTP/1.0\r\nHost: s.localhost\r\n\r\n", 200},
		{"malformed", func(g *Gateway) { routeTo(g, backend, Limits{}) }, "GET / HTTP/1.1\r\nHost: s.localhost\r\nBad Header: x\r\n\r\n", 400},
		{"head too large for the fast path", func(g *Gateway) { routeTo(g, backend, Limits{}) },
			"GET / HTTP/1.1\r\nHost: s.localhost\r\nCookie: " + strings.Repeat("c", readBufSize) + "\r\n\r\n", 200},
		{"body larger than the buffer", func(g *Gateway) { routeTo(g, backend, Limits{}) },
			"POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("b", 5000), 200},
		{"body over the solution's limit", func(g *Gateway) { routeTo(g, backend, Limits{Body: 3}) },
			"POST / HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 4\r\n\r\nbody", 413},
		{"head over MaxHeaderBytes", func(g *Gateway) { routeTo(g, backend, Limits{}) },
			"GET / HTTP/1.1\r\nHost: s.localhost\r\nCookie: " + strings.Repeat("c", 40<<10) + "\r\n\r\n", 431},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{})
			tc.route(g)
			addr, _, handoffs := serve(t, g)
			rc := dialRaw(t, addr)
			rc.send(tc.head)
			if resp, body := rc.read("GET"); resp.StatusCode != tc.status {
				t.Errorf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if handoffs.Load() != 1 {
				t.Errorf("%d hand-offs, want 1", handoffs.Load())
			}
		})
	}
}

func TestServerRateLimitGoesToNetHTTP(t *testing.T) {
	g := New(Config{})
	routeTo(g, echoBackend(t), Limits{RPS: 1, Burst: 1})
	addr, _, _ := fastServer(t, g)
	rc := dialRaw(t, addr)
	var got []int
	for range 3 {
		rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		resp, _ := rc.read("GET")
		got = append(got, resp.StatusCode)
	}
	if got[0] != 200 || got[1] != 429 || got[2] != 429 {
		t.Errorf("statuses %v, want 200 then 429s", got)
	}
}

// listenRaw serves each connection to a loopback port with serve, which
// closes it, until the test ends; it returns the address.
func listenRaw(tb testing.TB, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// rawBackend answers every request with answer, as bytes, and closes the
// connection after the first one when closeAfter.
func rawBackend(t *testing.T, answer string, closeAfter bool) string {
	return listenRaw(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, answer)
			if closeAfter {
				return
			}
		}
	})
}

func TestServerAnswersOfEveryShape(t *testing.T) { overBoth(t, testServerAnswersOfEveryShape) }

func testServerAnswersOfEveryShape(t *testing.T, serve serveFunc) {
	tests := []struct {
		name       string
		answer     string
		closeAfter bool
		body       string
		clientKeep bool // the client's connection stays usable
	}{
		{"until the replica closes", "HTTP/1.1 200 OK\r\n\r\nhello", true, "hello", false},
		{"chunked with trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\nX-T: 1\r\n\r\n", false, "hello", true},
		{"early hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, "hello", true},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", false, "", true},
		{"replica says close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello", true, "hello", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Config{})
			routeTo(g, rawBackend(t, tc.answer, tc.closeAfter), Limits{})
			addr, _, handoffs := serve(t, g)
			rc := dialRaw(t, addr)
			for i := range 2 {
				rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
				resp, body := rc.read("GET")
				if body != tc.body {
					t.Errorf("request %d: body %q, want %q", i, body, tc.body)
				}
				if resp.Close == tc.clientKeep {
					t.Errorf("request %d: Connection close %v, want %v", i, resp.Close, !tc.clientKeep)
				}
				if !tc.clientKeep {
					if _, err := rc.br.ReadByte(); err != io.EOF {
						t.Errorf("the connection stays open after an answer delimited by its end (%v)", err)
					}
					break
				}
			}
			if handoffs.Load() != 0 {
				t.Errorf("%d hand-offs, want none", handoffs.Load())
			}
		})
	}
}

// TestServerStreams has the replica send a chunk and wait until the
// client has it: only a proxy that passes chunks on as they come lets
// this finish.
func TestServerStreams(t *testing.T) { overBoth(t, testServerStreams) }

func testServerStreams(t *testing.T, serve serveFunc) {
	got := make(chan struct{})
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		select {
		case <-got:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "second")
	}))
	defer b.Close()
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, _ := serve(t, g)
	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("first;"))
	start := time.Now()
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first;" {
		t.Fatalf("first chunk %q: %v", buf, err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("the first chunk came only with the rest")
	}
	close(got)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "second" {
		t.Errorf("rest %q", rest)
	}
}

func TestServerConnectionClose(t *testing.T) { overBoth(t, testServerConnectionClose) }

func testServerConnectionClose(t *testing.T, serve serveFunc) {
	g := New(Config{})
	routeTo(g, echoBackend(t), Limits{})
	addr, s, _ := serve(t, g)

	rc := dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\nConnection: close\r\n\r\n")
	if resp, _ := rc.read("GET"); !resp.Close {
		t.Error("the answer to Connection: close does not say close")
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("connection open after Connection: close (%v)", err)
	}

	idle := dialRaw(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	idle.read("GET")
	s.SetKeepAlivesEnabled(false)
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection open after keep-alives were turned off (%v)", err)
	}
	rc = dialRaw(t, addr)
	rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	if resp, _ := rc.read("GET"); !resp.Close {
		t.Error("with keep-alives off, an answer does not say close")
	}
}

func TestServerShutdownWaitsForRequests(t *testing.T) {
	overBoth(t, testServerShutdownWaitsForRequests)
}

func testServerShutdownWaitsForRequests(t *testing.T, serve serveFunc) {
	release := make(chan struct{})
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer b.Close()
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, s, _ := serve(t, g)

	idle := dialRaw(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	idle.read("GET")
	busy := dialRaw(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	time.Sleep(50 * time.Millisecond) // the request is at the replica

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Errorf("idle connection open during shutdown (%v)", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if resp, body := busy.read("GET"); body != "done" || !resp.Close {
		t.Errorf("the request in flight got %q (close %v)", body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// syncBuffer is a bytes.Buffer for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServerSlowClients: a client that sends half a head, and one that
// keeps a connection open without asking anything, are cut off by the
// fast path itself (not handed to net/http, which would start their
// clocks afresh).
func TestServerSlowClients(t *testing.T) { overBoth(t, testServerSlowClients) }

func testServerSlowClients(t *testing.T, serve serveFunc) {
	g := New(Config{})
	routeTo(g, echoBackend(t), Limits{})
	addr, _, handoffs := serve(t, g, ServerConfig{ReadHeaderTimeout: 200 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})

	slow := dialRaw(t, addr)
	slow.send("GET / HTTP/1.1\r\nHost: s.lo")
	idle := dialRaw(t, addr)
	idle.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	idle.read("GET")
	start := time.Now()
	for name, rc := range map[string]*rawConn{"half a head": slow, "idle": idle} {
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Errorf("%s: connection not closed (%v)", name, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed only after %v", d)
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs, want none", n)
	}
}

// TestServerPostNeverSentTwice: a replica that takes a POST and drops the
// connection without answering may have acted on it; the fast path
// answers 502 rather than send it again (GET would be sent again).
func TestServerPostNeverSentTwice(t *testing.T) { overBoth(t, testServerPostNeverSentTwice) }

func testServerPostNeverSentTwice(t *testing.T, serve serveFunc) {
	var got atomic.Int64
	replica := listenRaw(t, func(c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err == nil {
			io.Copy(io.Discard, r.Body)
			got.Add(1)
		}
	})
	g := New(Config{})
	routeTo(g, replica, Limits{})
	addr, _, handoffs := serve(t, g)
	rc := dialRaw(t, addr)
	rc.send("POST /charge HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 2\r\n\r\n{}")
	resp, body := rc.read("POST")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not answering") || !resp.Close {
		t.Errorf("got %d %q (close %v), want a 502 that closes", resp.StatusCode, body, resp.Close)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("the replica got the POST %d times, want once", n)
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs: net/http would send it again", n)
	}
}

// TestServerBareLF: a head with bare LF line ends gets 400 and the
// connection closes (issue 15: it used to get no answer at all).
func TestServerBareLF(t *testing.T) { overBoth(t, testServerBareLF) }

func testServerBareLF(t *testing.T, serve serveFunc) {
	g := New(Config{Domain: "localhost", Apex: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "apex") })})
	routeTo(g, echoBackend(t), Limits{})
	addr, _, _ := serve(t, g)
	for _, head := range []string{
		"GET / HTTP/1.1\nHost: s.localhost\n\n",
		"GET / HTTP/1.1\r\nHost: s.localhost\n\r\n",
		"GET / HTTP/1.1\r\nHost: localhost\nX: y\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\nGET /b HTTP/1.1\nHost: s.localhost\n\n", // the second of two
	} {
		rc := dialRaw(t, addr)
		rc.send(head)
		resp, _ := rc.read("GET")
		if strings.Count(head, "GET") == 2 {
			if resp.StatusCode != 200 {
				t.Fatalf("%q: first answer %d", head, resp.StatusCode)
			}
			resp, _ = rc.read("GET")
		}
		if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Errorf("%q: %d close=%v, want 400 and Connection: close", head, resp.StatusCode, resp.Close)
		}
	}
}

// TestServerFraming: what the e2e smuggling suite (test/e2e's
// TestSmuggling) found. A head with both Content-Length and
// Transfer-Encoding gets 400 from the fast path and nothing reaches the
// replica (net/http would read it by Transfer-Encoding and keep the
// connection open); a body whose chunked framing is broken gets 400 and
// the connection closes, not the 502 of a solution that failed.
func TestServerFraming(t *testing.T) { overBoth(t, testServerFraming) }

func testServerFraming(t *testing.T, serve serveFunc) {
	// Counted by path, one per row: a cut request of one row may reach
	// the replica after the next row began.
	var mu sync.Mutex
	got := map[string]int64{}
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path]++
		mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.RequestURI+" "+string(body))
	}))
	t.Cleanup(b.Close)
	g := New(Config{Domain: "localhost", Apex: http.NotFoundHandler()})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, _ := serve(t, g)
	for _, c := range []struct {
		name, req string
		status    int
		replica   int64 // requests the replica got
	}{
		{"CL.TE", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: s.localhost\r\n\r\n", 400, 0},
		{"TE.CL in other cases", "POST /a HTTP/1.1\r\nHost: s.localhost\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 3\r\n\r\n0\r\n\r\n", 400, 0},
		{"folded Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400, 0},
		{"HTTP/1.0", "POST /a HTTP/1.0\r\nHost: s.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 0},
		{"a chunk longer than it says", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", 400, -1},
		{"a bare LF in a chunk line", "POST /a HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n", 400, -1},
	} {
		path := "/" + strings.ReplaceAll(c.name, " ", "-")
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			rc.send(strings.Replace(c.req, "POST /a ", "POST "+path+" ", 1))
			resp, body := rc.read("POST")
			if resp.StatusCode != c.status {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, c.status)
			}
			if !resp.Close {
				t.Errorf("%d without Connection: close", resp.StatusCode)
			}
			if _, err := rc.br.ReadByte(); err != io.EOF {
				t.Errorf("after the answer: %v, want the connection closed (EOF)", err)
			}
			// A broken body may have reached the replica in part before
			// the break (-1: either way); nothing after it ever does.
			mu.Lock()
			n := got[path]
			mu.Unlock()
			if c.replica >= 0 && n != c.replica || n > 1 && c.replica < 0 {
				t.Errorf("the replica got %d requests, want %d", n, c.replica)
			}
		})
	}
}

// TestServerIdleHoldsNoBuffers: a connection waiting for its next request
// gives its read and write buffers back, and takes them again when the
// request comes (TestLoad's 10,000 idle connections held 8 KiB each).
func TestServerIdleHoldsNoBuffers(t *testing.T) { overBoth(t, testServerIdleHoldsNoBuffers) }

func testServerIdleHoldsNoBuffers(t *testing.T, serve serveFunc) {
	g := New(Config{Domain: "localhost", Apex: http.NotFoundHandler()})
	routeTo(g, echoBackend(t), Limits{})
	addr, s, _ := serve(t, g)
	var conns []*rawConn
	for range 20 {
		rc := dialRaw(t, addr)
		rc.send("GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		if _, body := rc.read("GET"); body != "GET /a " {
			t.Fatalf("first request: %q", body)
		}
		conns = append(conns, rc)
	}
	held := func() int64 {
		for deadline := time.Now().Add(5 * time.Second); s.buffered.Load() != 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		return s.buffered.Load()
	}
	if n := held(); n != 0 {
		t.Fatalf("%d of 20 idle connections hold their buffers", n)
	}
	// A head in two parts: the buffers come back with its first part and
	// are kept until it is whole (they hold that part).
	for i, rc := range conns {
		rc.send("GET /b")
		if i%2 == 0 {
			time.Sleep(time.Millisecond)
		}
		rc.send(fmt.Sprintf("/%d HTTP/1.1\r\nHost: s.localhost\r\n\r\n", i))
		if _, body := rc.read("GET"); body != fmt.Sprintf("GET /b/%d ", i) {
			t.Errorf("second request on connection %d: %q", i, body)
		}
	}
	if n := held(); n != 0 {
		t.Errorf("%d of 20 idle connections hold their buffers after a second request", n)
	}
}
