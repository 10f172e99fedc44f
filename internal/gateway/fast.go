package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The fast path: HTTP/1.1 GET and HEAD requests, and POST and PUT with a
// Content-Length body that fits with its head in the read buffer, for
// awake solutions, over plain TCP or TLS (tlsconn.go): what nearly every visitor and API client sends,
// served by the connection's own goroutine. It reads the head in place,
// forwards its lines to a pooled connection of the replica, and copies
// the answer back as bytes. net/http costs several times as much per
// request (its Request and Header maps, a context, a background read to
// notice a client leaving, a response writer); profiles of the gateway put
// it at about half the time of a request, and aim proxied at 0.59 of
// nginx's rate with it.
//
// Anything else goes to net/http, at a request boundary and for the rest
// of the connection: other methods and bodies, upgrades, event streams,
// expectations, unusual heads, the apex, solutions asleep or starting,
// refused rates, trusted proxies' forwarded chains. So does a GET or HEAD
// whose replica fails before any byte of the answer was written: they are
// idempotent, and net/http's path retries, waits or explains the failure
// as it always has. A body is never sent twice.
//
// The fence. The fast path is fast.go, head.go, tlsconn.go and
// sysconn*.go; what it takes from the rest of the package is, and should
// stay, only:
//   - the route table: Table.lookup, route and its snapshot (state,
//     limits, prefixes), snapshot.pick and the upstream it picks;
//   - the replica pool: connPool's get, put and dial, and upConn, the same
//     pooled connections net/http's path (proxy.go) uses;
//   - the counters and limits: stats.observe, the limiter's allow and
//     giveBack, Proxies.trusts, isBot, and the access log's accessEntry
//     and logAccess, so both paths count, limit and log alike;
//   - the server: Server.track and Server.give, the hand-over of a
//     connection to net/http with the bytes read ahead, and over TLS the
//     config and the headers its handler adds (tlsConf, tlsAdded).
//
// Its invariants:
//   - head.go changes only with FuzzParseRequest and FuzzServerFraming
//     (the differential fuzz tests against net/http's reader, of heads and
//     of whole connections over TCP and TLS) passing: the fast path accepts a
//     strict subset of what net/http does, never a head net/http would
//     read differently, which is what keeps the two from disagreeing about
//     where a request ends (request smuggling);
//   - a request the fast path cannot finish is handed over before any
//     byte of its answer reached the client, or answered 502 by the fast
//     path itself once a body may have reached the replica;
//   - socket calls run inside RawConn callbacks on non-blocking sockets
//     (sysconn.go), and never block there.

// errBadAnswer marks an answer the fast path does not pass on itself.
var errBadAnswer = errors.New("an answer the fast path does not handle")

var errTooManyFiles = syscall.EMFILE

// readBufSize bounds a request head the fast path reads; a longer one
// (large cookies, say) goes to net/http, which applies MaxHeaderBytes.
// With the writer's, it is what a kept-alive connection holds, as much as
// net/http's own buffers.
const readBufSize = 4 << 10

var (
	connReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	connWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// fastConn is one client connection on the fast path.
type fastConn struct {
	s    *Server
	c    net.Conn
	peer netip.Addr
	br   *bufio.Reader
	bw   *bufio.Writer
	// out is what bw writes to; bw and br go back to their pools while
	// the connection waits for a request (see dropBuffers).
	out      io.Writer
	idle     atomic.Bool
	peerText string
	// host is the Host of the connection's last request, hostName the
	// same as a string.
	host     []byte
	hostName string
	// readDL and writeDL are the deadlines set on c.
	readDL, writeDL time.Time
	// scratch holds an answer's head while it is read and checked.
	scratch []byte
	// rd reads the socket when the connection has a RawConn.
	rd rawReader
	// first is true until the first request's head has begun to arrive;
	// handOffNow says that the connection is net/http's from here on.
	first, handOffNow bool
	// end is when the last request on the fast path was answered.
	end time.Time
	// up is the replica connection of the request in flight; stallFn is
	// upStalled, made once.
	up      *upConn
	stallFn func() error
	// Over TLS (tlsconn.go): tc is the connection once its handshake is
	// done, tlsRC the socket's RawConn, ahead what the client-gone check
	// read of the client and the read buffer has yet to get; shaking is
	// true during the handshake.
	tc      *tls.Conn
	tlsRC   syscall.RawConn
	ahead   []byte
	shaking atomic.Bool
	// waitFn is tlsWaitStep, made once; looked is its state.
	waitFn func(uintptr) bool
	looked bool
}

// upStalled is called when the replica has been silent for stallCheck: it
// ends the exchange if the client has gone, or gives the replica longer.
func (fc *fastConn) upStalled() error {
	if fc.clientGone() {
		return errClientGone
	}
	fc.up.waitBy(time.Now())
	return nil
}

// clientGone is true when the client closed its connection or reset it.
// It looks without reading: bytes waiting (a pipelined request) mean the
// client is there.
func (fc *fastConn) clientGone() bool {
	if fc.tc != nil {
		return fc.tlsGone()
	}
	if fc.rd.fd == 0 {
		return false // no socket to look at (no RawConn): wait as before
	}
	n, err := peek(fc.rd.fd)
	return err == nil && n == 0 || err != nil && err != syscall.EAGAIN && err != syscall.EINTR
}

// now is the time for the wait after a request: when the request was
// answered, a moment ago, which saves reading the clock again.
func (fc *fastConn) now() time.Time {
	if fc.end.IsZero() {
		return time.Now()
	}
	return fc.end
}

func newFastConn(s *Server, c net.Conn) *fastConn {
	fc := &fastConn{s: s, c: c}
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		fc.peer = ta.AddrPort().Addr().Unmap()
		fc.peerText = fc.peer.String()
	}
	return fc
}

func (fc *fastConn) serve() {
	fc.first = true
	fc.stallFn = fc.upStalled
	if cfg := fc.s.tlsConf; cfg != nil {
		if !fc.handshake(cfg) {
			fc.s.track(fc, false)
			fc.c.Close()
			return
		}
		if p := fc.tc.ConnectionState().NegotiatedProtocol; p != "" && p != "http/1.1" {
			// HTTP/2, or an ACME challenge: net/http's, as it is.
			fc.s.track(fc, false)
			if !fc.s.give(fc.tc, nil) {
				fc.c.Close()
			}
			return
		}
		fc.out = fc.tc
		fc.takeBuffers(tlsReader{fc})
		fc.run(0)
	} else if sc := newSysConn(fc.c); sc != nil {
		fc.out = sc
		fc.takeBuffers(&fc.rd)
		_ = sc.rc.Read(fc.run) // an error is the client leaving, or a deadline
	} else {
		fc.out = fc.c
		fc.takeBuffers(fc.c)
		fc.run(0)
	}
	handedOff := fc.handOffNow && fc.handOff()
	fc.s.track(fc, false)
	switch {
	case handedOff:
	case fc.tc != nil:
		fc.tc.Close() // with a close_notify, as net/http's
	default:
		fc.c.Close()
	}
	fc.dropBuffers()
}

// takeBuffers gives the connection its read and write buffers.
func (fc *fastConn) takeBuffers(in io.Reader) {
	fc.br = connReaders.Get().(*bufio.Reader)
	fc.br.Reset(in)
	fc.bw = connWriters.Get().(*bufio.Writer)
	fc.bw.Reset(fc.out)
	fc.s.buffered.Add(1)
}

// dropBuffers puts the buffers back in their pools. A connection waiting
// for its next request has nothing in them: holding them would cost 8 KiB
// for every idle connection, half of what one costs (TestLoad's 10,000
// idle connections took 168 MiB with them held).
func (fc *fastConn) dropBuffers() {
	if fc.br == nil {
		return
	}
	fc.br.Reset(nil)
	connReaders.Put(fc.br)
	fc.bw.Reset(nil)
	connWriters.Put(fc.bw)
	fc.br, fc.bw = nil, nil
	fc.s.buffered.Add(-1)
}

// run serves requests until the connection is done, or is net/http's
// (handOffNow), and then returns true. With a RawConn (fd is the socket)
// it also returns false when it must wait for the client, and is called
// again, from where it left off, once the socket has something.
//
// This is what saves the read that finds nothing. Go's reads try the
// socket first and wait only when it has nothing, which between requests
// of a kept-alive connection it never has: one system call per request
// for nothing. Within one RawConn.Read, the poller is armed before the
// first read, so after a read that left the socket empty (fewer bytes
// than asked for), whatever arrives later wakes the wait: the loop can
// wait at once, as nginx does, without reading again.
func (fc *fastConn) run(fd uintptr) bool {
	fc.rd.fd, fc.rd.empty = int(fd), false
	if fc.br == nil {
		fc.takeBuffers(&fc.rd) // dropped while the connection waited
	}
	srv := fc.s.HTTP
	for {
		if fc.br.Buffered() == 0 {
			if !fc.idle.Load() {
				fc.idle.Store(true)
				if fc.s.closing.Load() || fc.s.noKeep.Load() && !fc.first {
					return true
				}
				wait := srv.IdleTimeout
				if fc.first {
					wait = srv.ReadHeaderTimeout
				}
				fc.readBy(fc.now(), wait)
			}
			if fc.tc != nil && !fc.tlsIdle() {
				return true
			}
			if _, err := fc.br.Peek(1); err != nil {
				if err == errWouldBlock && fc.bw.Buffered() == 0 {
					fc.dropBuffers() // nothing read, nothing to write: wait without them
				}
				return err != errWouldBlock // else the client left or was too slow
			}
			fc.idle.Store(false)
			if !fc.first && endOfHead(fc.peek()) < 0 {
				// The head came in parts: from its first byte, the
				// client has ReadHeaderTimeout to send the rest.
				fc.readBy(time.Now(), srv.ReadHeaderTimeout)
			}
		}
		fc.first = false
		head, err := fc.readHead()
		if err == errBareLF {
			fc.badRequest("request lines must end in CRLF")
			return true
		}
		if err != nil {
			return err != errWouldBlock
		}
		if head == nil {
			fc.handOffNow = true
			return true
		}
		var h reqHead
		keep, done := false, false
		ok := parseRequest(head, &h)
		// Transfer-Encoding always fails parseRequest (net/http's to
		// read), so only a head the fast path refuses can have both.
		if !ok && twoFramings(head) {
			fc.badRequest("a request has either Content-Length or Transfer-Encoding, not both")
			return true
		}
		if ok {
			if h.length > 0 {
				// A body the fast path sends must be in the buffer with
				// its head: it can then go to net/http whole if needed.
				if int64(len(head))+h.length > int64(fc.br.Size()) {
					fc.handOffNow = true
					return true
				}
				b, err := fc.br.Peek(len(head) + int(h.length))
				if err != nil {
					return err != errWouldBlock
				}
				h.head, h.body = b[:len(head)], b[len(head):]
			}
			keep, done = fc.proxy(&h)
		}
		if !done {
			fc.handOffNow = true
			return true
		}
		if !keep {
			return true
		}
	}
}

// errWouldBlock is what rawReader returns instead of waiting.
var errWouldBlock = errors.New("nothing to read yet")

// rawReader reads the client's socket inside RawConn.Read. empty is true
// once a read found it empty: another read, before the poller says there
// is more, would find nothing.
type rawReader struct {
	fd    int
	empty bool
}

func (r *rawReader) Read(p []byte) (int, error) {
	if r.empty {
		return 0, errWouldBlock
	}
	n, err := sysRead(r.fd, p)
	switch {
	case err == syscall.EAGAIN:
		r.empty = true
		return 0, errWouldBlock
	case err != nil:
		return 0, err
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	r.empty = n < len(p)
	return n, nil
}

// Deadlines. Moving one costs a lock and a timer change; an answer that
// comes back within a moment of the last would move it by that moment.
// So a deadline moves only when it would come too early, and then a
// little further than asked: the client gets at least the time it is due,
// and at most an eighth more.

// readBy makes sure the client has at least d from now to send.
func (fc *fastConn) readBy(now time.Time, d time.Duration) {
	if want := now.Add(d); fc.readDL.Before(want) || fc.readDL.After(want.Add(d/8)) {
		fc.readDL = want.Add(d / 8)
		_ = fc.c.SetReadDeadline(fc.readDL)
	}
}

// writeBy makes sure the client has at least d from now to take the
// answer.
func (fc *fastConn) writeBy(now time.Time, d time.Duration) {
	if want := now.Add(d); fc.writeDL.Before(want) || fc.writeDL.After(want.Add(d/8)) {
		fc.writeDL = want.Add(d / 8)
		_ = fc.c.SetWriteDeadline(fc.writeDL)
	}
}

func (fc *fastConn) peek() []byte {
	b, _ := fc.br.Peek(fc.br.Buffered())
	return b
}

// readHead returns the next request's head, left in the read buffer; nil
// when it is larger than the buffer, for net/http to read. An error means
// the client closed the connection or missed the read deadline.
func (fc *fastConn) readHead() ([]byte, error) {
	for {
		b, _ := fc.br.Peek(fc.br.Buffered())
		n := endOfHead(b)
		if bareLF(b, n) {
			return nil, errBareLF
		}
		if n >= 0 {
			return b[:n], nil
		}
		if len(b) == fc.br.Size() {
			return nil, nil
		}
		// Wait for more of it.
		if _, err := fc.br.Peek(len(b) + 1); err != nil {
			return nil, err
		}
	}
}

// errBareLF is a head with a line ended by LF alone. RFC 9112 lets a
// server take those; the fast path refuses them, since waiting for the
// CRLFCRLF that would end such a head leaves the client with no answer
// at all, and proxies that read line ends differently are how requests
// are smuggled.
var errBareLF = errors.New("a line ended by a bare LF")

// bareLF reports whether the head in b (n bytes long, or all of b when
// n < 0) has an LF not preceded by CR.
func bareLF(b []byte, n int) bool {
	if n >= 0 {
		b = b[:n]
	}
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return false
}

// badRequest answers a head the fast path could not read, and the
// connection closes after it: where the next request starts is unknown.
func (fc *fastConn) badRequest(why string) {
	body := "400 Bad Request: " + why + "\n"
	fmt.Fprintf(fc.bw, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	_ = fc.bw.Flush()
}

// handOff gives the connection, and what was read of it, to net/http.
func (fc *fastConn) handOff() bool {
	if fc.bw.Buffered() > 0 && fc.bw.Flush() != nil {
		return false
	}
	var unread []byte
	if n := fc.br.Buffered(); n > 0 {
		b, _ := fc.br.Peek(n)
		unread = append([]byte(nil), b...)
	}
	// net/http sets its own deadlines, and expects none.
	_ = fc.c.SetDeadline(time.Time{})
	if fc.tc != nil {
		if len(fc.ahead) > 0 {
			unread = append(unread, fc.ahead...)
		}
		return fc.s.give(fc.tc, unread)
	}
	return fc.s.give(fc.c, unread)
}

// proxy serves one request on the fast path. done is false when nothing
// was consumed or written and the request is net/http's to serve; keep
// says whether the connection can take another request.
func (fc *fastConn) proxy(h *reqHead) (keep, done bool) {
	g := fc.s.gw
	if !bytes.Equal(h.host, fc.host) {
		// Clients keep asking one host over a connection: the string is
		// made once.
		fc.host = append(fc.host[:0], h.host...)
		fc.hostName = string(h.host)
	}
	name := g.solutionName(fc.hostName)
	if name == "" {
		return false, false
	}
	rt := g.Routes.lookup(name)
	if rt == nil {
		return false, false
	}
	if h.xff && len(g.cfg.TrustedProxies) > 0 && g.cfg.TrustedProxies.trusts(fc.peer) {
		return false, false // the client is further back: net/http reads the chain
	}
	snap := rt.snap.Load()
	if snap.body > 0 && h.length > snap.body {
		return false, false // net/http answers 413
	}
	if snap.private {
		return false, false // net/http checks who may reach it (admit)
	}
	up := snap.pick(string(h.path))
	if up == nil {
		return false, false
	}
	b := up.backend()
	if b == nil {
		return false, false
	}
	start := time.Now()
	lim := rt.lim.Load()
	if lim != nil {
		if ok, _ := lim.allow(fc.peer, start); !ok {
			return false, false // net/http answers 429 with its Retry-After
		}
	}
	bot := isBot(h.isHead, h.path, h.ua, g.cfg.BotAgents)
	if !bot {
		rt.active(start.UnixNano())
	}
	rt.enter()
	b.inflight.Add(1)
	status, out, keep, done := fc.exchange(h, b, start)
	b.inflight.Add(-1)
	rt.leave()
	if !done {
		if lim != nil {
			lim.giveBack(fc.peer) // net/http admits the request again
		}
		return false, false
	}
	end := fc.end // set by exchange
	if !bot {
		rt.active(end.UnixNano())
	}
	rt.stats.observe(status, end.Sub(start), h.length, out)
	if g.cfg.Usage != nil && !bot {
		g.cfg.Usage.Request(rt.name, fc.peer, h.html && h.method == "GET", status, end)
	}
	if g.cfg.AccessLog != nil {
		g.logAccess(&accessEntry{
			solution: rt.name, client: fc.peer, method: h.method, host: h.host,
			uri: h.target, proto: "HTTP/1.1", status: status, in: h.length, out: out,
			start: start, userAgent: h.ua, referer: h.ref,
		}, end)
	}
	return keep, true
}

// exchange sends the request to the replica and copies its answer to the
// client. done is false when nothing was written to the client, which
// leaves the request to net/http.
func (fc *fastConn) exchange(h *reqHead, b *backend, start time.Time) (status int, out int64, keep, done bool) {
	var (
		u    *upConn
		resp respHead
		err  error
	)
	hasBody := len(h.body) > 0
	for attempt := 0; ; attempt++ {
		u = b.pool.get(start)
		reused := u != nil
		if reused && hasBody && !u.alive() {
			// A body must not go out on a connection the replica may
			// have closed: it could not be sent again.
			u.close()
			u, reused = nil, false
		}
		if u == nil {
			if u, err = b.pool.dial(context.Background()); err != nil {
				return 0, 0, false, false
			}
		}
		fc.writeRequest(u.bw, h)
		u.bw.Write(h.body)
		fc.up = u
		u.watch(fc.stallFn, start)
		var delivered bool
		if delivered, err = u.send(); err == nil {
			fc.scratch, resp, err = readResponseHead(u.br, fc.scratch[:0])
		}
		if err == nil {
			break
		}
		u.close()
		if err == errClientGone {
			// Nobody to answer: the replica's connection is closed, which
			// tells it to stop too, and so is the client's.
			fc.br.Discard(len(h.head) + len(h.body))
			fc.end = time.Now()
			return 499, 0, false, true
		}
		if hasBody && delivered {
			// The replica has the whole request and may have acted on
			// it: it is never sent twice. (GET and HEAD may be.)
			status := fc.badGateway(h, err)
			fc.end = time.Now()
			return status, 0, false, true
		}
		// A pooled connection the replica had closed: the request can go
		// again on a new one, as http.Transport does; after that it is
		// net/http's, which tries once more or explains.
		if !reused || attempt > 0 {
			return 0, 0, false, false
		}
	}
	srv := fc.s.HTTP
	keep = !h.close && !fc.s.noKeep.Load() && !fc.s.closing.Load()
	noBody := h.isHead || resp.status == 204 || resp.status == 304
	if !noBody && !resp.chunked && resp.length < 0 {
		keep = false // the answer lasts until the replica closes
	}
	if !keep {
		fc.scratch = append(fc.scratch, "Connection: close\r\n"...)
	}
	if fc.tc != nil && len(fc.s.tlsHeader) > 0 {
		fc.scratch = fc.s.addTLSHeaders(fc.scratch)
	}
	fc.scratch = append(fc.scratch, "\r\n"...)
	fc.writeBy(start, srv.WriteTimeout)
	fc.br.Discard(len(h.head) + len(h.body)) // from here on, the request is ours
	p := rawPair{dst: fc.out, src: u.src()}
	if noBody || !resp.chunked {
		_, err = fc.bw.Write(fc.scratch)
	}
	switch {
	case err != nil || noBody:
	case resp.chunked:
		var clean bool
		out, clean, err = copyChunkedWide(fc.bw, u.br, p, fc.scratch)
		resp.close = resp.close || !clean
	case resp.length >= 0:
		out, err = copyN(fc.bw, u.br, resp.length, p)
	default:
		out, err = copyN(fc.bw, u.br, -1, p)
		if err == io.EOF {
			err, resp.close = nil, true
		}
	}
	// The replica's connection is sound if its answer was read whole,
	// whatever the client then does with it.
	u.unwatch()
	upOK := err == nil && !resp.close
	if err == nil && (fc.br.Buffered() == 0 || !keep) {
		err = fc.bw.Flush()
	}
	fc.end = time.Now()
	if upOK {
		b.pool.put(u, fc.end)
	} else {
		u.close()
	}
	if err != nil {
		keep = false
	}
	return resp.status, out, keep, true
}

// writeRequest writes the head to the replica: the client's lines without
// the hop-by-hop ones, and the forwarding headers.
func (fc *fastConn) writeRequest(w *bufio.Writer, h *reqHead) {
	w.Write(h.line)
	rest := h.head[len(h.line):]
	for {
		eol := indexLF(rest)
		line := rest[:eol+1]
		rest = rest[eol+1:]
		if len(line) == 2 {
			break
		}
		name := line[:indexColon(line)]
		switch hdrKind(name) {
		case hdrConn, hdrXFF, hdrHop:
			continue
		}
		w.Write(line)
	}
	w.WriteString("X-Forwarded-For: ")
	w.WriteString(fc.peerText)
	w.WriteString("\r\nX-Forwarded-Host: ")
	w.Write(h.host)
	if fc.tc != nil {
		w.WriteString("\r\nX-Forwarded-Proto: https\r\n")
	} else {
		w.WriteString("\r\nX-Forwarded-Proto: http\r\n")
	}
	if h.noLength {
		w.WriteString("Content-Length: 0\r\n")
	}
	w.WriteString("\r\n")
}

func indexLF(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return len(b) - 1
}

func indexColon(b []byte) int {
	for i, c := range b {
		if c == ':' {
			return i
		}
	}
	return 0
}

// copyN copies n bytes of a body (all of it to EOF when n < 0), flushing
// what the client was given whenever the replica has nothing more ready:
// streamed answers arrive as they are made, and quick ones in one write.
// Past what the buffers hold, a long body goes from src (what r reads) to
// dst (what w writes) through a larger buffer (copyLong).
func copyN(w *bufio.Writer, r *bufio.Reader, n int64, p rawPair) (int64, error) {
	var done int64
	for n < 0 || done < n {
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return done, err
			}
			if p.src != nil && (n < 0 || n-done > longBody) {
				k, err := copyLong(p, n-done, n < 0)
				return done + k, err
			}
			if _, err := r.Peek(1); err != nil {
				if err == io.EOF && n >= 0 {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
		}
		k := r.Buffered()
		if n >= 0 {
			k = int(min(int64(k), n-done))
		}
		b, _ := r.Peek(k)
		if _, err := w.Write(b); err != nil {
			return done, err
		}
		r.Discard(k)
		done += int64(k)
	}
	return done, nil
}

// rawPair is what the replica's reader and the client's writer are over,
// for copyLong; zero for none.
type rawPair struct {
	dst io.Writer
	src io.Reader
}

// src is what the replica connection's reader reads.
func (c *upConn) src() io.Reader {
	if c.sc != nil {
		return c.sc
	}
	return c.conn
}

// longBody is the rest of a body past which copyN moves it with copyLong.
// A chunk of a streamed answer is usually smaller, and goes as before.
const longBody = 16 << 10

// bodyBufs are copyLong's buffers, held only while a body is copied: an
// idle connection holds none.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyLong copies n bytes (to EOF when toEOF) from p.src to p.dst,
// writing each read at once. Through the 4 KiB buffers a 1 MiB answer
// took 256 reads and 256 writes, which were most of its cost in a
// profile; with 64 KiB, 16 of each.
func copyLong(p rawPair, n int64, toEOF bool) (int64, error) {
	bp := bodyBufs.Get().(*[]byte)
	defer bodyBufs.Put(bp)
	buf := *bp
	var done int64
	for toEOF || done < n {
		m := len(buf)
		if !toEOF {
			m = int(min(int64(m), n-done))
		}
		k, err := p.src.Read(buf[:m])
		if k > 0 {
			if _, werr := p.dst.Write(buf[:k]); werr != nil {
				return done, werr
			}
			done += int64(k)
		}
		if err != nil {
			if err == io.EOF && !toEOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
	}
	return done, nil
}

// copyChunked copies a chunked body as it is, chunk sizes, extensions and
// trailers included, reading the framing only to find its end.
func copyChunked(w *bufio.Writer, r *bufio.Reader, p rawPair) (int64, error) {
	var out int64
	for {
		line, err := chunkLine(w, r)
		if err != nil {
			return out, err
		}
		size, err := chunkSize(line)
		if err != nil {
			return out, err
		}
		w.Write(line)
		w.WriteString("\r\n")
		if size == 0 {
			// Trailers, then the blank line.
			for {
				line, err := chunkLine(w, r)
				if err != nil {
					return out, err
				}
				w.Write(line)
				w.WriteString("\r\n")
				if len(line) == 0 {
					return out, nil
				}
			}
		}
		n, err := copyN(w, r, size, p)
		out += n
		if err != nil {
			return out, err
		}
		line, err = chunkLine(w, r)
		if err != nil {
			return out, err
		}
		if len(line) != 0 {
			return out, errBadAnswer
		}
		w.WriteString("\r\n")
	}
}

// wideReader reads a chunked answer through 64 KiB instead of the replica
// connection's 4 KiB: what the 4 KiB reader held first (pre), then the
// socket. A stream of 4 KiB chunks took two reads and two writes a chunk
// through the small buffer; through this one, a read takes whatever
// chunks have arrived, and they go to the client in one write.
type wideReader struct {
	br       *bufio.Reader
	pre, buf []byte // pre is what is left of buf to read
	src      io.Reader
}

func (w *wideReader) Read(p []byte) (int, error) {
	if len(w.pre) > 0 {
		n := copy(p, w.pre)
		w.pre = w.pre[n:]
		return n, nil
	}
	return w.src.Read(p)
}

var wideReaders = sync.Pool{New: func() any {
	w := &wideReader{buf: make([]byte, 0, 4<<10)}
	w.br = bufio.NewReaderSize(w, 64<<10)
	return w
}}

var wideWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// copyChunkedWide writes head, then copies a chunked body as copyChunked
// does, through a pooled wideReader and a 64 KiB writer to the client when
// the replica's connection has a RawConn (p.src); the answer is all
// written when it returns. clean is false when the replica sent bytes past
// the answer's end, which the wide reader took and drops: its connection
// must then not be used again.
func copyChunkedWide(w *bufio.Writer, r *bufio.Reader, p rawPair, head []byte) (out int64, clean bool, err error) {
	if p.src == nil {
		if _, err = w.Write(head); err == nil {
			out, err = copyChunked(w, r, p)
		}
		return out, true, err
	}
	if err = w.Flush(); err != nil {
		return 0, true, err
	}
	wr := wideReaders.Get().(*wideReader)
	b, _ := r.Peek(r.Buffered())
	wr.buf = append(wr.buf[:0], b...)
	wr.pre = wr.buf
	r.Discard(len(b))
	wr.src = p.src
	wr.br.Reset(wr)
	ww := wideWriters.Get().(*bufio.Writer)
	ww.Reset(p.dst)
	if _, err = ww.Write(head); err == nil {
		out, err = copyChunked(ww, wr.br, rawPair{dst: p.dst, src: wr})
	}
	if err == nil {
		err = ww.Flush()
	}
	clean = wr.br.Buffered() == 0 && len(wr.pre) == 0
	ww.Reset(nil)
	wideWriters.Put(ww)
	wr.br.Reset(nil)
	wr.src, wr.pre = nil, nil
	wideReaders.Put(wr)
	return out, clean, err
}

// chunkLine reads a line of chunked framing, flushing the client first if
// it would wait for it.
func chunkLine(w *bufio.Writer, r *bufio.Reader) ([]byte, error) {
	if r.Buffered() == 0 {
		if err := w.Flush(); err != nil {
			return nil, err
		}
	}
	line, err := readLine(r)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return line, err
}

// chunkSize reads the hexadecimal size at the start of a chunk line.
func chunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if n > 1<<40 {
			return 0, errBadAnswer
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 || i < len(line) && line[i] != ';' && line[i] != ' ' && line[i] != '\t' {
		return 0, errBadAnswer
	}
	return n, nil
}

// badGateway answers 502 for a request whose replica failed after it had
// the whole request, and closes the connection.
func (fc *fastConn) badGateway(h *reqHead, err error) int {
	g := fc.s.gw
	g.log.Warn("proxy error", "host", string(h.host), "path", string(h.path), "err", err)
	a := &rawAnswer{h: http.Header{}}
	if fc.tc != nil {
		maps.Copy(a.h, fc.s.tlsAdded)
	}
	g.notAnswering(a, &http.Request{Method: h.method, Header: http.Header{}})
	fc.br.Discard(len(h.head) + len(h.body))
	_ = a.writeTo(fc.bw)
	return a.status
}

// rawAnswer is an http.ResponseWriter for the gateway's own answers on the
// fast path: it keeps the answer whole, then writes it, head and body, to
// the connection, which it then closes.
type rawAnswer struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (a *rawAnswer) Header() http.Header { return a.h }

func (a *rawAnswer) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
}

func (a *rawAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}

func (a *rawAnswer) writeTo(w *bufio.Writer) error {
	w.WriteString("HTTP/1.1 " + strconv.Itoa(a.status) + " " + http.StatusText(a.status) + "\r\n")
	a.h.Set("Content-Length", strconv.Itoa(a.body.Len()))
	a.h.Set("Connection", "close")
	_ = a.h.Write(w)
	w.WriteString("\r\n")
	w.Write(a.body.Bytes())
	return w.Flush()
}
