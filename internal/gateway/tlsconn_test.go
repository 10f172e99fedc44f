package gateway

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveFunc starts a Server for g and returns its address, as fastServer.
type serveFunc func(t *testing.T, g *Gateway, cfg ...ServerConfig) (string, *Server, *atomic.Int64)

// overBoth runs a server test over plain TCP and over TLS: the fast path
// frames both alike.
func overBoth(t *testing.T, test func(*testing.T, serveFunc)) {
	t.Run("tcp", func(t *testing.T) { test(t, fastServer) })
	t.Run("tls", func(t *testing.T) { test(t, tlsServer) })
}

// tlsAddrs are the addresses tlsServer serves, which dialRaw dials with
// TLS.
var tlsAddrs sync.Map

// tlsServer is fastServer over TLS (HTTP/1.1 and h2 offered), handler h
// if given (a wrapper of g), else g.
func tlsServer(t *testing.T, g *Gateway, cfg ...ServerConfig) (string, *Server, *atomic.Int64) {
	return tlsServerFor(t, g, cfg...)
}

func tlsServerFor(t *testing.T, h http.Handler, cfg ...ServerConfig) (string, *Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(h, append(cfg, ServerConfig{})[0])
	handoffs := new(atomic.Int64)
	s.HTTP.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			handoffs.Add(1)
		}
	}
	go s.ServeTLS(ln, &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}})
	addr := ln.Addr().String()
	tlsAddrs.Store(addr, true)
	t.Cleanup(func() {
		s.Close()
		tlsAddrs.Delete(addr) // a plain server may get the port next
	})
	return addr, s, handoffs
}

var (
	certOnce sync.Once
	cert     tls.Certificate
)

// testCert is a self-signed ECDSA certificate for s.localhost.
func testCert(t *testing.T) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "s.localhost"},
			DNSNames: []string{"s.localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return cert
}

// dialTLS is dialRaw over TLS, offering protos.
func dialTLS(t *testing.T, addr string, protos ...string) *rawConn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "s.localhost", NextProtos: protos})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

// headersBackend answers with what the gateway forwarded, and sets the
// header named by ?set.
func headersBackend(t *testing.T) string {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("set"); v != "" {
			w.Header().Set("Strict-Transport-Security", v)
		}
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto"))
	}))
	t.Cleanup(b.Close)
	return strings.TrimPrefix(b.URL, "http://")
}

// addHeader adds a header over TLS around a handler, as certs' HSTS does.
type addHeader struct {
	next http.Handler
	h    http.Header
}

func (a addHeader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS != nil {
		for k, v := range a.h {
			w.Header()[k] = v
		}
	}
	a.next.ServeHTTP(w, r)
}
func (a addHeader) Unwrap() http.Handler    { return a.next }
func (a addHeader) TLSHeaders() http.Header { return a.h }

// TestServerTLS: over TLS the fast path serves HTTP/1.1 (negotiated or
// not) with what net/http's path would add (X-Forwarded-Proto https, the
// wrapper's headers unless the solution set its own), hands off with the
// connection's TLS state intact, and leaves HTTP/2 to net/http.
func TestServerTLS(t *testing.T) {
	g := New(Config{})
	routeTo(g, headersBackend(t), Limits{})
	h := addHeader{next: g, h: http.Header{"Strict-Transport-Security": {"max-age=60"}}}
	addr, _, handoffs := tlsServerFor(t, h)

	for _, protos := range [][]string{{"http/1.1"}, nil} {
		rc := dialTLS(t, addr, protos...)
		rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		resp, body := rc.read("GET")
		if body != "https" || resp.Header.Get("Strict-Transport-Security") != "max-age=60" {
			t.Errorf("ALPN %q: forwarded proto %q, HSTS %q", protos, body, resp.Header.Values("Strict-Transport-Security"))
		}
		rc.send("GET /?set=max-age=5 HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		if resp, _ := rc.read("GET"); strings.Join(resp.Header.Values("Strict-Transport-Security"), ",") != "max-age=5" {
			t.Errorf("the solution's own HSTS: %q", resp.Header.Values("Strict-Transport-Security"))
		}
	}
	if n := handoffs.Load(); n != 0 {
		t.Fatalf("%d hand-offs for requests the fast path takes", n)
	}

	// A chunked body goes to net/http, which must still see TLS.
	rc := dialTLS(t, addr, "http/1.1")
	rc.send("POST / HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, body := rc.read("POST"); body != "https" || resp.Header.Get("Strict-Transport-Security") != "max-age=60" {
		t.Errorf("after hand-off: forwarded proto %q, HSTS %q", body, resp.Header.Get("Strict-Transport-Security"))
	}
	if n := handoffs.Load(); n != 1 {
		t.Errorf("%d hand-offs, want 1", n)
	}

	c := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: true,
		DialTLSContext:    nil,
	}}
	resp, err := c.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("ALPN h2 served as %s", resp.Proto)
	}
	if n := handoffs.Load(); n != 2 {
		t.Errorf("%d hand-offs, want 2 (the HTTP/2 connection)", n)
	}

	// A plain HTTP client gets net/http's 400.
	pc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	io.WriteString(pc, "GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	_ = pc.SetDeadline(time.Now().Add(10 * time.Second))
	if b, _ := io.ReadAll(pc); !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request") {
		t.Errorf("plain HTTP to the TLS port: %q", b)
	}
}

// TestServerShutdownDuringHandshake: a connection that never finishes
// its handshake does not hold Shutdown up.
func TestServerShutdownDuringHandshake(t *testing.T) {
	g := New(Config{})
	addr, s, _ := tlsServer(t, g)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(t.Context()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second): // the handshake timeout is 10s
		t.Fatal("Shutdown waits for a handshake")
	}
}

// TestServerTLSPipelinedDuringStall: a request that arrives while the one
// before it waits on a silent replica is read by the client-gone check
// (it has to decrypt to see whether the client left) and then served.
func TestServerTLSPipelinedDuringStall(t *testing.T) {
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			time.Sleep(stallCheck + stallCheck/2)
		}
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, handoffs := tlsServer(t, g)
	rc := dialRaw(t, addr)
	rc.send("GET /late HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	rc.send("GET /next HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
	if _, body := rc.read("GET"); body != "/late" {
		t.Errorf("first: %q", body)
	}
	if _, body := rc.read("GET"); body != "/next" {
		t.Errorf("pipelined: %q", body)
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs, want none", n)
	}
}

// TestServerLongBodies: answers longer than the buffers (copyLong) arrive
// whole, with a length, chunked in large chunks, and until the replica
// closes, and the connection goes on.
func TestServerLongBodies(t *testing.T) { overBoth(t, testServerLongBodies) }

func testServerLongBodies(t *testing.T, serve serveFunc) {
	body := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "1048576")
			io.WriteString(w, body)
		case "/chunked":
			for i := 0; i < len(body); i += 100 << 10 {
				io.WriteString(w, body[i:min(i+100<<10, len(body))])
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			w.(http.Flusher).Flush()
			io.WriteString(w, body)
		}
	}))
	t.Cleanup(b.Close)
	g := New(Config{})
	routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
	addr, _, handoffs := serve(t, g)
	rc := dialRaw(t, addr)
	for _, path := range []string{"/length", "/chunked", "/length", "/close"} {
		rc.send("GET " + path + " HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		if _, got := rc.read("GET"); got != body {
			t.Fatalf("%s: %d bytes, not the %d sent", path, len(got), len(body))
		}
	}
	if n := handoffs.Load(); n != 0 {
		t.Errorf("%d hand-offs, want none", n)
	}
	if n := countedBy(g, 2, 4); n != 4 {
		t.Errorf("2xx counted %d times, want 4", n)
	}
}

// TestServerTLSHandshakeFails: a failed handshake is logged and closes the
// connection, with or without an ErrorLog.
func TestServerTLSHandshakeFails(t *testing.T) {
	for _, withLog := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(New(Config{}), ServerConfig{})
		if !withLog {
			s.HTTP.ErrorLog = nil
		}
		go s.ServeTLS(ln, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "\x16\x03\x01\x00\x05hello")
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("with ErrorLog %v: %v, want the connection closed", withLog, err)
		}
		c.Close()
		s.Close()
	}
}

// TestServerTLSResumes: the fast path's handshake is the config's, so a
// session ticket sealed with keys chosen per client (as the shared ticket
// key ring does, through GetConfigForClient) resumes the session on a new
// connection.
func TestServerTLSResumes(t *testing.T) {
	g := New(Config{})
	routeTo(g, headersBackend(t), Limits{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	keyed := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
	keyed.SetSessionTicketKeys([][32]byte{{1, 2, 3}})
	s := NewServer(g, ServerConfig{})
	go s.ServeTLS(ln, &tls.Config{
		Certificates:       []tls.Certificate{testCert(t)},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return keyed, nil },
	})
	t.Cleanup(func() { s.Close() })
	cache := tls.NewLRUClientSessionCache(4)
	for i, want := range []bool{false, true} {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "s.localhost", ClientSessionCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		rc := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
		rc.send("GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n")
		if _, body := rc.read("GET"); body != "https" {
			t.Errorf("connection %d: %q", i, body)
		}
		if got := c.ConnectionState().DidResume; got != want {
			t.Errorf("connection %d resumed %v, want %v", i, got, want)
		}
		c.Close()
	}
}

// TestServerTLSRecordsAhead: two requests in two TLS records sent at once
// likely reach the tls.Conn in one read of the socket; the second, held
// by the tls.Conn while the first is served, must not be waited for on the
// socket, where nothing more comes.
func TestServerTLSRecordsAhead(t *testing.T) {
	g := New(Config{})
	routeTo(g, echoBackend(t), Limits{})
	addr, _, _ := tlsServer(t, g)
	rc := dialRaw(t, addr)
	for i := range 20 {
		rc.send(fmt.Sprintf("GET /a%d HTTP/1.1\r\nHost: s.localhost\r\n\r\n", i))
		rc.send(fmt.Sprintf("GET /b%d HTTP/1.1\r\nHost: s.localhost\r\n\r\n", i))
		_, a := rc.read("GET")
		_, b := rc.read("GET")
		if a != fmt.Sprintf("GET /a%d ", i) || b != fmt.Sprintf("GET /b%d ", i) {
			t.Fatalf("round %d: %q, %q", i, a, b)
		}
	}
}
