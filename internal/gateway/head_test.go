package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		head string
		ok   bool
		// what the fast path must have read, when ok
		path, host, ua string
		isHead, close  bool
		length         int64
	}{
		{name: "plain GET", head: "GET /a/b?x=1 HTTP/1.1\r\nHost: s.localhost\r\nUser-Agent: wrk\r\n\r\n", ok: true, path: "/a/b", host: "s.localhost", ua: "wrk"},
		{name: "HEAD", head: "HEAD / HTTP/1.1\r\nHost: s.localhost:8080\r\n\r\n", ok: true, path: "/", host: "s.localhost:8080", isHead: true},
		{name: "connection close", head: "GET / HTTP/1.1\r\nhost: s.localhost\r\nConnection: Keep-Alive, close\r\n\r\n", ok: true, path: "/", host: "s.localhost", close: true},
		{name: "content-length zero", head: "GET / HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\n\r\n", ok: true, path: "/", host: "s"},
		{name: "query with escapes", head: "GET /q?text=a%20b HTTP/1.1\r\nHost: s\r\n\r\n", ok: true, path: "/q", host: "s"},
		{name: "header value with tab and obs-text", head: "GET / HTTP/1.1\r\nHost: s\r\nX-A: a\tb \xff\r\n\r\n", ok: true, path: "/", host: "s"},

		{name: "POST", head: "POST /api HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n\r\n", ok: true, path: "/api", host: "s", length: 2},
		{name: "PUT without length", head: "PUT /x HTTP/1.1\r\nHost: s\r\n\r\n", ok: true, path: "/x", host: "s"},
		{name: "PATCH", head: "PATCH / HTTP/1.1\r\nHost: s\r\nContent-Length: 2\r\n\r\n"},
		{name: "chunked POST", head: "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "signed length", head: "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: +2\r\n\r\n"},
		{name: "listed length", head: "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 2, 2\r\n\r\n"},
		{name: "huge length", head: "POST / HTTP/1.1\r\nHost: s\r\nContent-Length: 99999999999999999999\r\n\r\n"},
		{name: "other method", head: "DELETE / HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "lower-case method", head: "get / HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "HTTP/1.0", head: "GET / HTTP/1.0\r\nHost: s\r\n\r\n"},
		{name: "absolute form", head: "GET http://s/ HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "asterisk", head: "GET * HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "escaped path", head: "GET /a%2Fb HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "fragment", head: "GET /a?b#c HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "two spaces", head: "GET  / HTTP/1.1\r\nHost: s\r\n\r\n"},
		{name: "no host", head: "GET / HTTP/1.1\r\n\r\n"},
		{name: "empty host", head: "GET / HTTP/1.1\r\nHost:\r\n\r\n"},
		{name: "two hosts", head: "GET / HTTP/1.1\r\nHost: s\r\nHost: t\r\n\r\n"},
		{name: "body length", head: "GET / HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\n"},
		{name: "two lengths", head: "GET / HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n"},
		{name: "transfer-encoding", head: "GET / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{name: "upgrade", head: "GET / HTTP/1.1\r\nHost: s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{name: "expect", head: "GET / HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\n\r\n"},
		{name: "event stream", head: "GET / HTTP/1.1\r\nHost: s\r\nAccept: text/event-stream\r\n\r\n"},
		{name: "connection names a header", head: "GET / HTTP/1.1\r\nHost: s\r\nConnection: X-Hop\r\n\r\n"},
		{name: "folded line", head: "GET / HTTP/1.1\r\nHost: s\r\nX-A: a\r\n b\r\n\r\n"},
		{name: "bare LF", head: "GET / HTTP/1.1\r\nHost: s\nX-A: a\r\n\r\n"},
		{name: "space before colon", head: "GET / HTTP/1.1\r\nHost : s\r\n\r\n"},
		{name: "control character", head: "GET / HTTP/1.1\r\nHost: s\r\nX-A: a\x00b\r\n\r\n"},
		{name: "bare CR in value", head: "GET / HTTP/1.1\r\nHost: s\r\nX-A: a\rb\r\n\r\n"},
		{name: "no colon", head: "GET / HTTP/1.1\r\nHost: s\r\nX-A\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h reqHead
			ok := parseRequest([]byte(tc.head), &h)
			if ok != tc.ok {
				t.Fatalf("parseRequest = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if string(h.path) != tc.path || string(h.host) != tc.host || string(h.ua) != tc.ua || h.isHead != tc.isHead || h.close != tc.close || h.length != tc.length {
				t.Errorf("read path %q host %q ua %q head %v close %v length %d", h.path, h.host, h.ua, h.isHead, h.close, h.length)
			}
		})
	}
}

// FuzzParseRequest checks that whatever the fast path takes, net/http
// reads the same way: the same method, target, path, host, no body and
// the same wish to close. A head the two read differently could carry a
// request past the gateway's routing (request smuggling). The seeds run
// with every go test; `go test -fuzz FuzzParseRequest` explores further.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: s.localhost\r\n\r\n",
		"HEAD /a/b?c=d HTTP/1.1\r\nHost: s\r\nConnection: close\r\nUser-Agent: x\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: s\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: s\r\nX: a\r\n\tb\r\n\r\n",
		"GET /%2e%2e/ HTTP/1.1\r\nHost: s\r\n\r\n",
		"GET /a;b=c/@:d HTTP/1.1\r\nHOST: S.LocalHost\r\n\r\n",
		"POST /x HTTP/1.1\r\nHost: s\r\nContent-Length: 0012\r\n\r\n",
		"PUT /x HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		n := endOfHead(head)
		if n < 0 {
			return
		}
		head = head[:n]
		var h reqHead
		if !parseRequest(head, &h) {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("the fast path takes %q, net/http refuses it: %v", head, err)
		}
		if r.Method != h.method || r.RequestURI != string(h.target) || r.URL.Path != string(h.path) ||
			r.Host != string(h.host) || r.ContentLength != h.length || r.Close != h.close || r.Header.Get("User-Agent") != string(h.ua) {
			t.Fatalf("%q: net/http reads %s %q path %q host %q length %d close %v; the fast path %q path %q host %q close %v",
				head, r.Method, r.RequestURI, r.URL.Path, r.Host, r.ContentLength, r.Close, h.target, h.path, h.host, h.close)
		}
	})
}

func TestReadResponseHead(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		out     string // what the client gets, without the blank line
		status  int
		length  int64
		chunked bool
		close   bool
		bad     bool
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\n", out: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n", status: 200, length: 5},
		{name: "hop-by-hop dropped", in: "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n", out: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", status: 200, length: 0},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", out: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n", status: 200, length: -1, chunked: true},
		{name: "replica closes", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", out: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", status: 200, length: 1, close: true},
		{name: "HTTP/1.0 until close", in: "HTTP/1.0 404 Not Found\r\nX: y\r\n\r\n", out: "HTTP/1.1 404 Not Found\r\nX: y\r\n", status: 404, length: -1, close: true},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\n", out: "HTTP/1.1 204\r\n", status: 204, length: -1},
		{name: "early hints first", in: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
			out: "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n", status: 200, length: 0},
		{name: "same length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", out: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", status: 200, length: 3},
		{name: "other coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", out: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n", status: 200, length: -1, close: true},

		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", bad: true},
		{name: "length and chunked", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", bad: true},
		{name: "switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", bad: true},
		{name: "not HTTP", in: "SSH-2.0-OpenSSH\r\n\r\n", bad: true},
		{name: "folded", in: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", bad: true},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nX: a\r\n\r\n", bad: true},
		{name: "cut short", in: "HTTP/1.1 200 OK\r\nX: a\r\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, h, err := readResponseHead(bufio.NewReader(strings.NewReader(tc.in)), nil)
			if tc.bad {
				if err == nil {
					t.Fatalf("no error; got %q %+v", out, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := respHead{status: tc.status, length: tc.length, chunked: tc.chunked, close: tc.close}
			if string(out) != tc.out || h != want {
				t.Errorf("got %q %+v\nwant %q %+v", out, h, tc.out, want)
			}
		})
	}
}

func TestCopyChunked(t *testing.T) {
	tests := []struct {
		name, in string
		out      int64
		bad      bool
	}{
		{name: "chunks", in: "3\r\nabc\r\n1;ext=1\r\nd\r\n0\r\n\r\n", out: 4},
		{name: "trailers", in: "2\r\nab\r\n0\r\nX-Sum: 2\r\n\r\n", out: 2},
		{name: "upper-case hex", in: "A\r\n0123456789\r\n0\r\n\r\n", out: 10},
		{name: "no CRLF after data", in: "3\r\nabcX\r\n0\r\n\r\n", bad: true},
		{name: "not hex", in: "zz\r\nab\r\n0\r\n\r\n", bad: true},
		{name: "cut short", in: "5\r\nab", bad: true},
		{name: "huge", in: "ffffffffffffffffff\r\n", bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := bufio.NewWriter(&buf)
			n, err := copyChunked(w, bufio.NewReader(strings.NewReader(tc.in)), rawPair{})
			w.Flush()
			if tc.bad {
				if err == nil {
					t.Fatalf("no error; copied %q", buf.String())
				}
				return
			}
			if err != nil || n != tc.out || buf.String() != tc.in {
				t.Errorf("copied %q (%d body bytes, %v), want it all as it came (%d)", buf.String(), n, err, tc.out)
			}
		})
	}
}

// TestCopyChunkedWide: through the wide reader, an answer arrives as it
// came, from what the small reader held and the rest of the socket, long
// chunks included, and bytes past its end make the connection unfit.
func TestCopyChunkedWide(t *testing.T) {
	long := strings.Repeat("x", 40<<10)
	answer := "3\r\nabc\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(long), long) + "0\r\nX-T: 1\r\n\r\n"
	for _, extra := range []string{"", "HTTP/1.1 200 OK\r\n"} {
		var buf bytes.Buffer
		src := strings.NewReader(answer + extra)
		r := bufio.NewReaderSize(src, 16)
		r.Peek(5) // the small reader holds the start
		w := bufio.NewWriter(&buf)
		n, clean, err := copyChunkedWide(w, r, rawPair{dst: &buf, src: src}, []byte("head;"))
		if err != nil || n != int64(3+len(long)) || buf.String() != "head;"+answer || clean != (extra == "") {
			t.Errorf("with %q after it: copied %d body bytes (%v), clean %v, the head and answer as they came: %v", extra, n, err, clean, buf.String() == "head;"+answer)
		}
	}
}
