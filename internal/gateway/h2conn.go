package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// HTTP/2 is net/http's server (golang.org/x/net/http2, the package
// net/http bundles), given each connection through batchConn. That server
// flushes its buffer whenever its queue of frames runs dry, and each flush
// is a TLS record and a write(2): with many streams on a connection, a
// response's HEADERS and DATA come from its handler one at a time, each
// waited for, and the queue is empty between them more often than not
// (1.7 writes a response in bench/gateway's h2 case, where HAProxy makes
// one for several). batchConn lets one write to the client carry what
// the server flushed while the previous one was under way.

// batchMax bounds the bytes a connection queues: a Write past it waits
// for the queue to go out, as the server's would wait for the socket.
const batchMax = 64 << 10

// configureHTTP2 makes s.HTTP serve HTTP/2 over TLS as net/http would,
// but through batchConn.
func configureHTTP2(hs *http.Server) error {
	keep := hs.TLSConfig // ConfigureServer fills in one of its own if nil
	h2 := &http2.Server{}
	if err := http2.ConfigureServer(hs, h2); err != nil {
		return err
	}
	hs.TLSConfig = keep
	hs.TLSNextProto[http2.NextProtoTLS] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		// As ConfigureServer's own: net/http passes its connection's
		// context (Server and local address) on the handler.
		var ctx context.Context
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			ctx = bc.BaseContext()
		}
		var nc net.Conn = c
		if hs.HTTP2 == nil || hs.HTTP2.WriteByteTimeout <= 0 {
			// A byte timeout is a deadline around each of the server's
			// writes, which returns here before the bytes went out.
			nc = newBatchConn(c)
		}
		h2.ServeConn(nc, &http2.ServeConnOpts{Context: ctx, Handler: h, BaseConfig: hs})
	}
	return nil
}

// withH2 returns cfg offering HTTP/2 and HTTP/1.1, as net/http's own
// ServeTLS would make it; cfg itself is not changed.
func withH2(cfg *tls.Config) *tls.Config {
	c := cfg.Clone()
	for _, p := range []string{http2.NextProtoTLS, "http/1.1"} {
		if !slices.Contains(c.NextProtos, p) {
			c.NextProtos = append(slices.Clip(c.NextProtos), p)
		}
	}
	return c
}

// batchConn is an HTTP/2 connection's tls.Conn whose writes return once
// queued. A goroutine, while there is something queued, writes all of it
// at once, after letting the goroutines that are ready run first (the
// handlers whose replicas have answered), so that the frames of several
// streams go out in one record and one system call, as an event loop's
// would. A write's error is returned by the next Write and by Close.
type batchConn struct {
	*tls.Conn
	mu      sync.Mutex
	cond    sync.Cond // signalled when a write to the client ends
	queued  []byte
	spare   []byte
	writing bool // the goroutine runs
	closed  bool
	err     error
}

func newBatchConn(c *tls.Conn) *batchConn {
	b := &batchConn{Conn: c}
	b.cond.L = &b.mu
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && !b.closed && len(b.queued) > 0 && len(b.queued)+len(p) > batchMax {
		b.cond.Wait()
	}
	switch {
	case b.err != nil:
		return 0, b.err
	case b.closed:
		return 0, net.ErrClosed
	}
	b.queued = append(b.queued, p...)
	if !b.writing {
		b.writing = true
		go b.writeQueued()
	}
	return len(p), nil
}

// writeQueued writes what is queued until nothing is; the connection
// then holds no buffer.
func (b *batchConn) writeQueued() {
	for {
		runtime.Gosched()
		b.mu.Lock()
		out := b.queued
		if len(out) == 0 || b.err != nil {
			b.writing = false
			b.queued, b.spare = nil, nil
			b.cond.Broadcast()
			b.mu.Unlock()
			return
		}
		b.queued = b.spare
		b.cond.Broadcast() // the queue has room again
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		b.spare = out[:0]
		if err != nil {
			b.err = err
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// Close closes the connection once what is queued (the server's last
// frames, a GOAWAY) has been written, waiting for a client that does not
// read at most as long as tls.Conn.Close waits to send its alert.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.writing {
		_ = b.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		for b.writing {
			b.cond.Wait()
		}
	}
	b.mu.Unlock()
	return b.Conn.Close()
}
