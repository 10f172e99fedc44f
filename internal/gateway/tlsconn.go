package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"os"
	"strings"
	"syscall"
	"time"
)

// The fast path over TLS. The server shakes hands itself, as net/http's
// would (the same config, deadline, 400 to a plain HTTP client and log
// line), so that a connection that negotiated HTTP/1.1, or no protocol,
// can be served by the same framing as a plain one; HTTP/2 and anything
// else (an ACME TLS-ALPN challenge) go to net/http untouched. Reads and
// writes then go through the tls.Conn: the plain path's raw socket calls
// (sysconn.go) cannot see through the encryption.

// handshake makes fc's connection TLS; false when it failed and is to be
// closed.
func (fc *fastConn) handshake(cfg *tls.Config) bool {
	srv := fc.s.HTTP
	tc := tls.Server(fc.c, cfg)
	fc.shaking.Store(true)
	if d := handshakeTimeout(srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout); d > 0 {
		_ = fc.c.SetDeadline(time.Now().Add(d))
	}
	if fc.s.closing.Load() {
		fc.shaking.Store(false)
		return false // Shutdown may have looked before shaking was set
	}
	err := tc.HandshakeContext(context.Background())
	fc.shaking.Store(false)
	if err != nil {
		reason := err.Error()
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			reason = "client sent an HTTP request to an HTTPS server"
		}
		logf := log.Printf // as net/http does without an ErrorLog
		if srv.ErrorLog != nil {
			logf = srv.ErrorLog.Printf
		}
		logf("http: TLS handshake error from %s: %v", fc.c.RemoteAddr(), reason)
		return false
	}
	_ = fc.c.SetDeadline(time.Time{})
	fc.tc = tc
	if sc, ok := fc.c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			fc.tlsRC = rc // for tlsGone and tlsIdle, which look at the socket
		}
	}
	return true
}

// tlsIdle waits for the client's next request without holding the read
// and write buffers, as the plain path does: 10,000 idle connections
// would hold 80 MiB of them. The tls.Conn may hold a record already
// (pipelined requests): a read with a deadline in the past, which Go
// refuses before any system call, takes it if so; else the buffers go
// back to their pools until the socket has something. False when the
// connection is to close.
func (fc *fastConn) tlsIdle() bool {
	if fc.tlsRC == nil || fc.bw.Buffered() > 0 || len(fc.ahead) > 0 {
		return true
	}
	_ = fc.c.SetReadDeadline(time.Unix(1, 0))
	_, err := fc.br.Peek(1)
	_ = fc.c.SetReadDeadline(fc.readDL)
	if fc.s.closing.Load() || fc.s.noKeep.Load() && !fc.first {
		return false // wakeIdle's deadline may have been overwritten
	}
	if err == nil {
		return true // a request, or its start, was in the tls.Conn
	}
	fc.dropBuffers()
	if fc.waitFn == nil {
		fc.waitFn = fc.tlsWaitStep
	}
	fc.looked = false
	if err := fc.tlsRC.Read(fc.waitFn); err != nil {
		return false // the idle timeout, or the server closing
	}
	fc.takeBuffers(tlsReader{fc})
	return true
}

// tlsWaitStep is tlsIdle's RawConn.Read callback: it asks to wait while
// the socket has nothing, and returns once it has (bytes, an end or an
// error), for the tls.Conn to read.
func (fc *fastConn) tlsWaitStep(fd uintptr) bool {
	if fc.looked {
		return true
	}
	fc.looked = true
	_, err := peek(int(fd))
	return err != syscall.EAGAIN
}

// handshakeTimeout is net/http's: the shortest of the positive timeouts.
func handshakeTimeout(ds ...time.Duration) time.Duration {
	var out time.Duration
	for _, d := range ds {
		if d > 0 && (out == 0 || d < out) {
			out = d
		}
	}
	return out
}

// looksLikeHTTP is net/http's test of a record header that is a plain
// HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsReader is what the read buffer reads over TLS: what the client-gone
// check read ahead first, then the tls.Conn.
type tlsReader struct{ fc *fastConn }

func (r tlsReader) Read(p []byte) (int, error) {
	fc := r.fc
	if len(fc.ahead) > 0 {
		n := copy(p, fc.ahead)
		fc.ahead = fc.ahead[n:]
		if len(fc.ahead) == 0 {
			fc.ahead = nil
		}
		return n, nil
	}
	return fc.tc.Read(p)
}

// tlsGone is clientGone over TLS. The socket says whether the client
// closed or reset it; bytes waiting on it are records, which may be a
// close_notify alert (a client that left politely) or a pipelined
// request: they are read through the tls.Conn, without waiting, and data
// is kept for the read buffer (ahead).
func (fc *fastConn) tlsGone() bool {
	if fc.tlsRC == nil {
		return false
	}
	var n int
	var err error
	_ = fc.tlsRC.Control(func(fd uintptr) { n, err = peek(int(fd)) })
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false // nothing sent: still there, waiting
	case err != nil || n == 0:
		return true
	}
	// A deadline a moment away makes the read take what has arrived (Go
	// does not read at all past a deadline); a record cut short stays in
	// the tls.Conn for the next read, since a timeout leaves it readable.
	_ = fc.c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var b [512]byte
	k, err := fc.tc.Read(b[:])
	_ = fc.c.SetReadDeadline(fc.readDL)
	fc.ahead = append(fc.ahead, b[:k]...)
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// addTLSHeaders appends to an answer's head (as readResponseHead wrote
// it) the headers the handler adds over TLS, but those the solution set
// itself: net/http's path lets a solution's header replace aim's.
func (s *Server) addTLSHeaders(head []byte) []byte {
	final := head
	if i := bytes.LastIndex(head, crlfcrlf); i >= 0 {
		final = head[i+4:] // after interim answers
	}
	for _, name := range s.tlsNames {
		if hasHeader(final, name) {
			return s.addTLSHeadersBut(head, final)
		}
	}
	return append(head, s.tlsHeader...)
}

// addTLSHeadersBut is addTLSHeaders when the solution set one of them.
func (s *Server) addTLSHeadersBut(head, final []byte) []byte {
	for name, vv := range s.tlsAdded {
		if hasHeader(final, strings.ToLower(name)) {
			continue
		}
		for _, v := range vv {
			head = append(head, name+": "+v+"\r\n"...)
		}
	}
	return head
}

// hasHeader reports whether a head has a line for the lower-case name.
func hasHeader(head []byte, name string) bool {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		if i := bytes.IndexByte(line, ':'); i > 0 && eqFold(line[:i], name) {
			return true
		}
	}
	return false
}
