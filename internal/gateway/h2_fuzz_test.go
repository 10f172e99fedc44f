package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recorder is a handler that notes each request it gets: whole (its
// body read to its end) or only its head (the body cut short).
type recorder struct {
	mu          sync.Mutex
	whole, head []string
	inflight    atomic.Int64
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.inflight.Add(1)
	defer rc.inflight.Add(-1)
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.head = append(rc.head, describe(r.Method, r.RequestURI, r.Host, nil))
	if err == nil {
		rc.whole = append(rc.whole, describe(r.Method, r.RequestURI, r.Host, body))
	}
	rc.mu.Unlock()
	io.WriteString(w, "ok")
}

func (rc *recorder) take() (whole, head []string) {
	for deadline := time.Now().Add(5 * time.Second); rc.inflight.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	whole, head = rc.whole, rc.head
	rc.whole, rc.head = nil, nil
	return whole, head
}

// h2Sides are the servers FuzzH2Framing sends to: the gateway over TLS
// (its HTTP/2 through batchConn) in front of a recording replica, and
// net/http's own HTTP/2 server recording what it reads.
type h2Sides struct {
	gateway, reference string
	replica, ref       recorder
}

var (
	h2FuzzOnce sync.Once
	h2FuzzS    *h2Sides
)

func h2FuzzServers(t *testing.T) *h2Sides {
	h2FuzzOnce.Do(func() {
		hs := &h2Sides{}
		b := httptest.NewServer(&hs.replica)
		g := New(Config{Domain: "localhost", Apex: http.NotFoundHandler()})
		routeTo(g, strings.TrimPrefix(b.URL, "http://"), Limits{})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := NewServer(g, ServerConfig{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second})
		s.HTTP.ErrorLog = nil
		go s.ServeTLS(ln, &tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: []string{"h2", "http/1.1"}})
		hs.gateway = ln.Addr().String()
		ref := httptest.NewUnstartedServer(&hs.ref)
		ref.EnableHTTP2 = true
		ref.Config.ErrorLog = nil
		ref.StartTLS()
		hs.reference = ref.Listener.Addr().String()
		h2FuzzS = hs
	})
	return h2FuzzS
}

// h2Frames encodes HTTP/2 frames for the seeds.
type h2Frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
}

func newH2Frames() *h2Frames {
	f := &h2Frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	return f
}

func (f *h2Frames) headers(stream uint32, end bool, kv ...string) *h2Frames {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := 0; i+1 < len(kv); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: block.Bytes(), EndStream: end, EndHeaders: true})
	return f
}

func (f *h2Frames) data(stream uint32, end bool, p string) *h2Frames {
	_ = f.fr.WriteData(stream, end, []byte(p))
	return f
}

// FuzzH2Framing is FuzzServerFraming for HTTP/2 over TLS: whatever
// frames a client sends after the preface, every request the replica
// gets whole is one that net/http's HTTP/2 server reads whole from them,
// and every one it gets at all one whose head net/http reads. The
// gateway serves HTTP/2 with golang.org/x/net/http2 through batchConn,
// so this holds that path to net/http's own, and to the replica's
// HTTP/1.1 framing (a Content-Length that the DATA frames do not match,
// a body smuggling a request).
func FuzzH2Framing(f *testing.F) {
	get := []string{":method", "GET", ":scheme", "https", ":authority", "s.localhost", ":path", "/a"}
	post := []string{":method", "POST", ":scheme", "https", ":authority", "s.localhost", ":path", "/b"}
	for _, seed := range []*h2Frames{
		newH2Frames().headers(1, true, get...),
		newH2Frames().headers(1, false, post...).data(1, false, "abc").data(1, true, "def"),
		newH2Frames().headers(1, false, append(post, "content-length", "3")...).data(1, true, "abcGET /smuggled HTTP/1.1\r\nHost: s.localhost\r\n\r\n"),
		newH2Frames().headers(1, false, append(post, "transfer-encoding", "chunked")...).data(1, true, "0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
		newH2Frames().headers(1, true, get...).headers(3, false, post...).headers(5, true, ":method", "GET", ":scheme", "https", ":authority", "t.localhost", ":path", "/c").data(3, true, "x"),
		newH2Frames().headers(1, true, ":method", "GET", ":scheme", "https", ":authority", "s.localhost", ":path", "/a b\r\nX: y"),
		newH2Frames().headers(1, true, append(get, "host", "t.localhost")...),
	} {
		f.Add(seed.buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 8<<10 {
			return
		}
		hs := h2FuzzServers(t)
		hs.replica.take()
		hs.ref.take()
		sendH2(t, hs.reference, in)
		refWhole, refHead := hs.ref.take()
		sendH2(t, hs.gateway, in)
		time.Sleep(time.Millisecond) // a request the gateway gave up on may still reach the replica
		gotWhole, gotHead := hs.replica.take()
		for _, c := range []struct {
			what      string
			got, want []string
		}{{"whole", gotWhole, refWhole}, {"by its head", gotHead, refHead}} {
			left := map[string]int{}
			for _, w := range c.want {
				left[w]++
			}
			for _, g := range c.got {
				if left[g] == 0 {
					t.Fatalf("%q: the replica got %s\n%s\nnet/http read\n%s", in, c.what, strings.Join(c.got, "\n"), strings.Join(c.want, "\n"))
				}
				left[g]--
			}
		}
	})
}

// sendH2 opens an HTTP/2 connection, sends the preface, empty settings,
// in and a PING, and reads until the server has answered the PING and
// ended every stream that in opens and ends (a handler of a connection
// the client closes would be cancelled before it reached the replica),
// or closed the connection or sent GOAWAY; then it closes.
func sendH2(t *testing.T, addr string, in []byte) {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("%s negotiated %q, not h2", addr, p)
	}
	// A server may wait for what the client never sends (flow control
	// its SETTINGS stopped, the rest of a body): the client gives up then,
	// and the requests in flight may or may not reach the replica, which
	// the comparison allows.
	_ = c.SetDeadline(time.Now().Add(time.Second))
	in = completeFrames(in)
	var out bytes.Buffer
	out.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&out, nil)
	_ = fr.WriteSettings()
	out.Write(in)
	_ = fr.WritePing(false, [8]byte{'e', 'n', 'd'})
	if _, err := c.Write(out.Bytes()); err != nil {
		return // the server closed first
	}
	open := endedStreams(in)
	pinged := false
	rd := http2.NewFramer(io.Discard, c)
	for !pinged || len(open) > 0 {
		f, err := rd.ReadFrame()
		if err != nil {
			return // closed, or a frame this framer refuses: done either way
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			pinged = pinged || f.IsAck() && f.Data == [8]byte{'e', 'n', 'd'}
		case *http2.GoAwayFrame:
			return
		case *http2.RSTStreamFrame:
			delete(open, f.StreamID)
		default:
			// END_STREAM is the same flag on DATA and HEADERS.
			if h := f.Header(); h.Flags.Has(http2.FlagDataEndStream) && (h.Type == http2.FrameData || h.Type == http2.FrameHeaders) {
				delete(open, h.StreamID)
			}
		}
	}
}

// completeFrames pads in with zeros to end on a frame's end: a server
// would otherwise wait for the rest of the last frame, taking the PING
// that follows as part of it, until its timeouts.
func completeFrames(in []byte) []byte {
	in = in[:len(in):len(in)]
	for pos := 0; pos < len(in); {
		if pos+9 > len(in) {
			in = append(in, make([]byte, pos+9-len(in))...)
		}
		n := int(in[pos])<<16 | int(in[pos+1])<<8 | int(in[pos+2])
		if n > 1<<14 {
			return in // past the frame size: refused from its header
		}
		if pos+9+n > len(in) {
			in = append(in, make([]byte, pos+9+n-len(in))...)
		}
		pos += 9 + n
	}
	return in
}

// endedStreams are the streams in's frames open and end, as far as a
// framer reads them.
func endedStreams(in []byte) map[uint32]bool {
	fr := http2.NewFramer(io.Discard, bytes.NewReader(in))
	opened, ended := map[uint32]bool{}, map[uint32]bool{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			opened[f.StreamID] = true
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ended[f.StreamID] = true
			}
		}
	}
	for id := range ended {
		if !opened[id] {
			delete(ended, id)
		}
	}
	return ended
}

// The fuzz test compares something: a request sent whole reaches the
// replica through the gateway as net/http's HTTP/2 server reads it.
func TestH2FramingForwards(t *testing.T) {
	hs := h2FuzzServers(t)
	hs.replica.take()
	hs.ref.take()
	in := newH2Frames().headers(1, false, ":method", "POST", ":scheme", "https", ":authority", "s.localhost", ":path", "/b").
		data(1, false, "abc").data(1, true, "def").buf.Bytes()
	sendH2(t, hs.reference, in)
	refWhole, _ := hs.ref.take()
	sendH2(t, hs.gateway, in)
	gotWhole, _ := hs.replica.take()
	want := describe("POST", "/b", "s.localhost", []byte("abcdef"))
	if len(refWhole) != 1 || refWhole[0] != want || len(gotWhole) != 1 || gotWhole[0] != want {
		t.Fatalf("net/http read %q, the replica got %q; want %q for both", refWhole, gotWhole, want)
	}
}
