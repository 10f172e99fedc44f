package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The gateway's own HTTP/1.1 client for the common case: a request that
// is not an upgrade goes out on a pooled connection that the handler's
// goroutine writes and reads itself. httputil.ReverseProxy over
// http.Transport does the same with two more goroutines per connection
// (a read loop and a write loop) and a channel hand-off each way, which a
// profile of the gateway under load showed as its largest cost after the
// system calls themselves. Upgrades (WebSockets) and requests that expect
// 100-continue still go through ReverseProxy, which handles them well.

const (
	// maxIdlePerBackend bounds the connections kept open to one replica.
	maxIdlePerBackend = 256
	// idleTimeout closes pooled connections nobody used for this long;
	// servers close theirs after a while too (Uvicorn after 5s, Node
	// after 5s, Go's not at all), so old ones are likely dead anyway.
	idleTimeout = 90 * time.Second
	// dialTimeout bounds connecting to a replica on the same host.
	dialTimeout = 5 * time.Second
	// refusedRetryPause is how long to wait before the one retry of a
	// refused connection: a replica that was just judged ready may still
	// be settling its listener.
	refusedRetryPause = 50 * time.Millisecond
)

// upConn is one connection to a replica.
type upConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time // when it went back to the pool

	// sc does the connection's reads and writes, when it has a RawConn,
	// and lets send wait for the answer without first reading nothing;
	// sendStep is send's callback, made once, and flushed and flushErr
	// its state. rdl is the read deadline set on the connection.
	sc       *sysConn
	sendStep func(fd uintptr) bool
	flushed  bool
	flushErr error
	rdl      time.Time
}

// stallCheck is how long the fast path lets a replica be silent before it
// looks whether the client is still there: a client that leaves a long
// request (an inference, say) must not leave the replica working for
// nobody. net/http's path learns it at once from its background read.
const stallCheck = time.Second

// watch has stalled called whenever the replica is silent for stallCheck
// while the answer is awaited or read; unwatch ends that.
func (c *upConn) watch(stalled func() error, now time.Time) {
	if c.sc == nil {
		return
	}
	c.sc.stalled = stalled
	c.waitBy(now)
}

func (c *upConn) unwatch() {
	if c.sc != nil {
		c.sc.stalled = nil
	}
}

// waitBy gives the replica stallCheck from now. As with the client's
// deadlines, it moves the deadline only when due, and then an eighth
// further, so that a busy connection moves it a few times a second.
func (c *upConn) waitBy(now time.Time) {
	if want := now.Add(stallCheck); c.rdl.Before(want) {
		c.rdl = want.Add(stallCheck / 8)
		_ = c.conn.SetReadDeadline(c.rdl)
	}
}

// noDeadline clears what watch set, for a caller that cancels by
// deadlines of its own.
func (c *upConn) noDeadline() {
	if !c.rdl.IsZero() {
		c.rdl = time.Time{}
		_ = c.conn.SetReadDeadline(time.Time{})
	}
}

// connPool keeps idle connections to one replica, newest last, so that
// the ones in use stay warm and old ones age out.
type connPool struct {
	addr string
	mu   sync.Mutex
	idle []*upConn
}

var (
	readers   = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	writers4k = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// get returns an idle connection, or nil. now is the time, which callers
// have at hand: reading the clock is one of the larger costs left on the
// fast path.
func (p *connPool) get(now time.Time) *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(c.used) < idleTimeout {
			return c
		}
		c.close()
	}
	return nil
}

func (p *connPool) put(c *upConn, now time.Time) {
	c.used = now
	p.mu.Lock()
	if len(p.idle) < maxIdlePerBackend {
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	c.close()
}

// closeIdle closes every pooled connection; the backend is gone.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
}

func (p *connPool) dial(ctx context.Context) (*upConn, error) {
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil && errors.Is(err, syscall.ECONNREFUSED) && ctx.Err() == nil {
		time.Sleep(refusedRetryPause)
		conn, err = d.DialContext(ctx, "tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(conn)
	bw := writers4k.Get().(*bufio.Writer)
	bw.Reset(conn)
	c := &upConn{conn: conn, br: br, bw: bw}
	if sc := newSysConn(conn); sc != nil {
		br.Reset(sc)
		bw.Reset(sc)
		c.sc, c.sendStep = sc, c.flushThenWait
	}
	return c, nil
}

// send writes the buffered request and, once it is all out, waits until
// the answer starts to arrive. An error before the request was all
// written leaves delivered false.
//
// A plain flush followed by a read costs one more system call per
// request: Go's reads try the socket first and park only when it has
// nothing, which, right after a request went out, it never has. Waiting
// inside the connection's RawConn.Read is safe because that call arms the
// poller before the callback writes the request: the answer, which can
// only come after the request, cannot arrive unnoticed.
func (c *upConn) send() (delivered bool, err error) {
	if c.sc == nil {
		err = c.bw.Flush()
		return err == nil, err
	}
	c.flushed, c.flushErr = false, nil
	err = c.sc.rc.Read(c.sendStep)
	if c.flushErr != nil {
		return false, c.flushErr
	}
	if err != nil && c.sc.stalled != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// Silent for stallCheck: if the client is still there, the
		// answer is read as usual, which waits on.
		err = c.sc.stalled()
	}
	return true, err
}

// flushThenWait is send's RawConn.Read callback: the first call writes
// the request and asks to wait for readability; the second, made once
// the socket has something (an answer, or an error or end), ends the
// wait, and the answer is then read as usual.
func (c *upConn) flushThenWait(uintptr) bool {
	if c.flushed {
		return true
	}
	c.flushed = true
	c.flushErr = c.bw.Flush()
	return c.flushErr != nil
}

func (c *upConn) close() {
	c.conn.Close()
	c.br.Reset(nil)
	readers.Put(c.br)
	c.bw.Reset(nil)
	writers4k.Put(c.bw)
}

// alive is true when an idle connection has not been closed by the
// replica: a peek that would block means nothing arrived; EOF or stray
// bytes mean the connection is of no use. It costs one system call, paid
// only before sending a body, which could not be sent again on another
// connection.
func (c *upConn) alive() bool {
	if c.br.Buffered() > 0 {
		return false
	}
	if c.sc == nil {
		return true
	}
	alive := false
	// Control, not Read: it never waits, and a read deadline that passed
	// while the connection sat in the pool does not stop it.
	_ = c.sc.rc.Control(func(fd uintptr) {
		_, err := peek(int(fd))
		alive = err == syscall.EAGAIN
	})
	return alive
}

// maxFastBody is the largest request body the pooled client sends. It
// writes the body before it reads the answer, which is only safe while
// the body fits in the sockets' buffers: a replica that answers early
// without reading a large body would otherwise block the write.
// http.Transport writes and reads at once, on two goroutines.
const maxFastBody = 64 << 10

// pooled is true for requests the pooled client handles.
func pooled(r *http.Request) bool {
	return r.ContentLength >= 0 && r.ContentLength <= maxFastBody && r.Trailer == nil &&
		r.Header.Get("Upgrade") == "" && r.Header.Get("Expect") == ""
}

// hopHeaders are the hop-by-hop headers (RFC 9110, 7.6.1) a proxy must
// not forward, and the forwarding headers the gateway writes itself.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "Forwarded": true,
}

// respHopHeaders are the hop-by-hop headers of an answer.
var respHopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// errClientGone marks a round trip the client abandoned.
var errClientGone = errors.New("the client went away")

// roundTrip sends r to the replica and copies the answer to w. It returns
// an error only when nothing was written to w yet, for the caller to
// answer.
func (g *Gateway) roundTrip(w http.ResponseWriter, r *http.Request, b *backend) error {
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	for attempt := 0; ; attempt++ {
		c := b.pool.get(time.Now())
		reused := c != nil
		if reused && hasBody && !c.alive() {
			c.close()
			c, reused = nil, false
		}
		if c == nil {
			var err error
			if c, err = b.pool.dial(r.Context()); err != nil {
				if r.Context().Err() != nil {
					return errClientGone
				}
				return err
			}
		}
		c.noDeadline()
		// A client that leaves unblocks whatever waits on the replica.
		stop := context.AfterFunc(r.Context(), func() { c.conn.SetDeadline(time.Unix(1, 0)) })
		resp, sent, err := g.exchange(c, r, hasBody)
		if err != nil {
			stop()
			c.close()
			// A reused connection the replica had closed: nothing of the
			// request was consumed, so it can go again on a new one, as
			// http.Transport does.
			if reused && !sent && attempt == 0 && r.Context().Err() == nil {
				continue
			}
			if r.Context().Err() != nil {
				return errClientGone
			}
			return err
		}
		err = copyResponse(w, resp)
		// The connection goes back only if the answer was read to its
		// end and no deadline was set on it.
		if stopped := stop(); err == nil && !resp.Close && stopped {
			b.pool.put(c, time.Now())
		} else {
			c.close()
		}
		return nil
	}
}

// exchange writes the request and reads the response head. sent says
// whether any of the request's body was consumed. Only requests that
// pooled admits come here: no body, or one of known, small length.
func (g *Gateway) exchange(c *upConn, r *http.Request, hasBody bool) (*http.Response, bool, error) {
	bw := c.bw
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	connHdr := r.Header["Connection"]
	for k, vv := range r.Header {
		if hopHeaders[k] || len(connHdr) > 0 && namedIn(connHdr, k) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("X-Forwarded-For: ")
	if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 && g.cfg.TrustedProxies.trustsPeer(r) {
		for _, p := range prior {
			bw.WriteString(p)
			bw.WriteString(", ")
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		bw.WriteString(host)
	}
	bw.WriteString("\r\nX-Forwarded-Host: ")
	bw.WriteString(r.Host)
	if r.TLS != nil {
		bw.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		bw.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if hasBody {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n")
	} else if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("\r\n")
	sent := false
	if hasBody {
		// Whatever of the body was read is gone: from here on the
		// request can't be sent again.
		sent = true
		buf := buffers.Get().(*[]byte)
		_, err := io.CopyBuffer(bw, onlyReader{r.Body}, *buf)
		buffers.Put(buf)
		if err != nil {
			return nil, true, err
		}
	}
	if _, err := c.send(); err != nil {
		return nil, sent, err
	}
	resp, err := http.ReadResponse(c.br, r)
	if err != nil {
		return nil, sent, err
	}
	return resp, sent, nil
}

// copyResponse writes the replica's answer to w. A nil error means the
// answer was read to its end.
func copyResponse(w http.ResponseWriter, resp *http.Response) error {
	defer resp.Body.Close()
	safeSetCookies(resp.Header)
	h := w.Header()
	connHdr := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if respHopHeaders[k] || len(connHdr) > 0 && namedIn(connHdr, k) {
			continue
		}
		h[k] = vv
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	// Answers of unknown length (streams, chunked output) are flushed as
	// they come; answers of known length are left to the server's
	// buffering, which writes them in as few system calls as it can.
	buf := buffers.Get().(*[]byte)
	defer buffers.Put(buf)
	var err error
	if resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		err = copyFlushing(w, resp.Body, *buf)
	} else {
		_, err = io.CopyBuffer(onlyWriter{w}, onlyReader{resp.Body}, *buf)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	return err
}

func copyFlushing(w http.ResponseWriter, body io.Reader, buf []byte) error {
	rc := http.NewResponseController(w)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// onlyReader and onlyWriter hide ReadFrom/WriteTo, so that io.CopyBuffer
// uses the pooled buffer instead of allocating.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// namedIn is true when the Connection header lists name.
func namedIn(connHdr []string, name string) bool {
	for _, v := range connHdr {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}
