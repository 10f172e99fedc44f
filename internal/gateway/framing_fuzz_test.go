package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzSides are the servers FuzzServerFraming sends to: the same gateway
// over plain TCP and over TLS, in front of a replica that records what it
// got.
type fuzzSides struct {
	plain, secure string
	mu            sync.Mutex
	got           []string
	inflight      atomic.Int64
}

var (
	fuzzOnce sync.Once
	fuzzS    *fuzzSides
)

func fuzzServers(t *testing.T) *fuzzSides {
	fuzzOnce.Do(func() {
		fs := &fuzzSides{}
		b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fs.inflight.Add(1)
			defer fs.inflight.Add(-1)
			body, _ := io.ReadAll(r.Body)
			fs.mu.Lock()
			fs.got = append(fs.got, describe(r.Method, r.RequestURI, r.Host, body))
			fs.mu.Unlock()
			io.WriteString(w, "ok")
		}))
		g := New(Config{Domain: "localhost", Apex: http.NotFoundHandler()})
		routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
		cfg := ServerConfig{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second}
		for _, secure := range []bool{false, true} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(g, cfg)
			s.HTTP.ErrorLog = nil
			if secure {
				go s.ServeTLS(ln, &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}})
				fs.secure = ln.Addr().String()
			} else {
				go s.Serve(ln)
				fs.plain = ln.Addr().String()
			}
		}
		fuzzS = fs
	})
	return fuzzS
}

func describe(method, uri, host string, body []byte) string {
	return fmt.Sprintf("%s %q host %q body %q", method, uri, host, body)
}

// FuzzServerFraming is the differential test at the level of a whole
// connection, over plain TCP and over TLS: whatever bytes a client sends,
// every request the replica gets is one that net/http's reader finds in
// them (some of them: the gateway may answer some itself, or refuse the
// rest of a connection). A request the replica got that net/http would
// not have read there is a smuggled one. Their order is not compared: the
// client's closing its side makes net/http cancel the request in flight,
// which may then reach the replica after the next one. The seeds run
// with every go test; `go test -fuzz FuzzServerFraming` explores further.
func FuzzServerFraming(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: s.localhost\r\n\r\nPOST /b HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: s.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: s.localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: s.localhost\nX: y\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhiGET /never HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: s.localhost\r\nHost: t.localhost\r\n\r\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, secure bool) {
		if len(in) > 8<<10 {
			return
		}
		fs := fuzzServers(t)
		want := netHTTPReads(in)
		fs.mu.Lock()
		fs.got = nil
		fs.mu.Unlock()
		addr := fs.plain
		if secure {
			addr = fs.secure
		}
		send(t, addr, secure, in)
		// A request the gateway gave up on may still reach the replica.
		time.Sleep(time.Millisecond)
		for deadline := time.Now().Add(5 * time.Second); fs.inflight.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		fs.mu.Lock()
		got := fs.got
		fs.mu.Unlock()
		left := map[string]int{}
		for _, w := range want {
			left[w]++
		}
		for _, g := range got {
			if left[g] == 0 {
				t.Fatalf("over TLS %v, %q: the replica got\n%s\nnet/http reads\n%s", secure, in, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			left[g]--
		}
	})
}

// netHTTPReads is what net/http's reader finds in a connection's bytes,
// up to the first request it cannot read whole.
func netHTTPReads(in []byte) []string {
	var out []string
	br := bufio.NewReader(bytes.NewReader(in))
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return out
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return out
		}
		uri := r.RequestURI
		if uri == "" || uri[0] != '/' {
			uri = r.URL.RequestURI() // the gateway sends the origin form
		}
		out = append(out, describe(r.Method, uri, r.Host, body))
		if r.Close {
			return out
		}
	}
}

// send writes in on a new connection, closes its sending side and reads
// until the server closes: by then the replica has had every request the
// server forwarded.
func send(t *testing.T, addr string, secure bool, in []byte) {
	var c net.Conn
	var err error
	if secure {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(in); err != nil {
		return // the server closed first: it refused what came
	}
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Logf("reading the answers: %v", err)
	}
}
