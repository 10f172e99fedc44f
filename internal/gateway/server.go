package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig holds what both of aim's servers (aim serve and the
// gateway in a cluster) set on their listeners.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's head; zero means 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request; zero means 5m.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer, from the end of the
	// request's head; zero means 10m. WebSockets and event streams are
	// exempt.
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection after this long without
	// a request; zero means 2m.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request heads (431 past it); zero means 32 KiB.
	MaxHeaderBytes int
	// Logger gets net/http's own complaints; nil means slog.Default().
	Logger *slog.Logger
}

// Server serves one listener. With the Gateway as its handler (itself, or
// inside a handler that adds headers over TLS, as HSTS does) it takes
// HTTP/1.1 requests for awake solutions on a fast path of its own
// (fast.go), over plain TCP and over TLS alike, and hands every other
// connection, at a request boundary, to a net/http Server that serves it
// from then on; over TLS, a connection that negotiated HTTP/2 (or any
// protocol but HTTP/1.1) goes to net/http right after its handshake. With
// any other handler (a redirect to HTTPS, say) it is that net/http Server
// alone.
type Server struct {
	// HTTP is the net/http server; its handler serves what the fast path
	// does not.
	HTTP *http.Server
	gw   *Gateway // nil: no fast path
	// tlsConf is set by ServeTLS: the listener's connections are TLS.
	tlsConf *tls.Config
	// tlsAdded are the headers the handler adds to answers over TLS
	// (HSTS), for the fast path to write too; tlsHeader holds them as
	// header lines, and tlsNames their names in lower case.
	tlsAdded  http.Header
	tlsHeader []byte
	tlsNames  []string

	handoff *handoffListener

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*fastConn]struct{}
	closing atomic.Bool
	noKeep  atomic.Bool
	// buffered counts the fast connections holding their buffers.
	buffered atomic.Int64
}

// NewServer builds a server for h with c's limits.
func NewServer(h http.Handler, c ServerConfig) *Server {
	c.Logger = cmp.Or(c.Logger, slog.Default())
	s := &Server{HTTP: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(c.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       cmp.Or(c.ReadTimeout, 5*time.Minute),
		WriteTimeout:      cmp.Or(c.WriteTimeout, 10*time.Minute),
		IdleTimeout:       cmp.Or(c.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    cmp.Or(c.MaxHeaderBytes, 32<<10),
		ErrorLog:          slog.NewLogLogger(c.Logger.Handler(), slog.LevelWarn),
	}}
	if err := configureHTTP2(s.HTTP); err != nil {
		// It fails only on a TLSConfig's cipher suites, and there is no
		// TLSConfig yet.
		panic(err)
	}
	inner := h
	var added http.Header
	if w, ok := h.(tlsHeaders); ok {
		inner, added = w.Unwrap(), w.TLSHeaders()
	}
	if g, ok := inner.(*Gateway); ok {
		s.gw = g
		s.conns = map[*fastConn]struct{}{}
		s.tlsAdded = added
		for name, vv := range added {
			s.tlsNames = append(s.tlsNames, strings.ToLower(name))
			for _, v := range vv {
				s.tlsHeader = append(s.tlsHeader, name+": "+v+"\r\n"...)
			}
		}
	}
	return s
}

// tlsHeaders is a handler around another that only adds headers to its
// answers to requests over TLS (certs' HSTS): the server can then serve
// the Gateway inside it on the fast path, which adds them itself.
type tlsHeaders interface {
	Unwrap() http.Handler
	TLSHeaders() http.Header
}

// Serve accepts connections on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error {
	if s.gw == nil {
		return s.HTTP.Serve(l)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = l
	s.handoff = &handoffListener{addr: l.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Unlock()
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.HTTP.Serve(s.handoff) }()
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// As net/http does: out of descriptors, wait for some
				// to be closed rather than give up serving.
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				time.Sleep(pause)
				continue
			}
			s.handoff.Close()
			<-httpErr
			return err
		}
		pause = 0
		fc := newFastConn(s, c)
		if !s.track(fc, true) {
			c.Close()
			continue
		}
		go fc.serve()
	}
}

// ServeTLS serves HTTPS on l with cfg. Without a fast path net/http does
// all of it; with one, the fast path shakes hands (tlsconn.go) and serves
// HTTP/1.1 as over plain TCP, and net/http gets HTTP/2 and whatever the
// fast path hands off.
func (s *Server) ServeTLS(l net.Listener, cfg *tls.Config) error {
	// As http.Server.ServeTLS does: its own copy, offering HTTP/2 and
	// HTTP/1.1 too.
	c := withH2(cfg)
	s.HTTP.TLSConfig = c
	if s.gw == nil {
		return s.HTTP.ServeTLS(l, "", "")
	}
	s.mu.Lock()
	s.tlsConf = c
	s.mu.Unlock()
	return s.Serve(l)
}

func (s *Server) track(fc *fastConn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		if s.closing.Load() {
			return false
		}
		s.conns[fc] = struct{}{}
	} else {
		delete(s.conns, fc)
	}
	return true
}

// SetKeepAlivesEnabled false makes every answer from now on close its
// connection, and closes idle ones, so that clients move to another
// replica; as http.Server's.
func (s *Server) SetKeepAlivesEnabled(v bool) {
	s.noKeep.Store(!v)
	s.HTTP.SetKeepAlivesEnabled(v)
	if !v {
		s.wakeIdle()
	}
}

// wakeIdle makes fast connections that wait for a request look again at
// whether they should close.
func (s *Server) wakeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	closing := s.closing.Load()
	for fc := range s.conns {
		if fc.idle.Load() || closing && fc.shaking.Load() {
			_ = fc.c.SetReadDeadline(time.Now())
		}
	}
}

// Shutdown stops accepting, closes idle connections and waits for the
// requests in flight to be answered, or for ctx; as http.Server's.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.gw == nil {
		return s.HTTP.Shutdown(ctx)
	}
	s.closing.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.HTTP.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.wakeIdle()
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return <-httpDone
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), <-httpDone)
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	if s.gw == nil {
		return s.HTTP.Close()
	}
	s.closing.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for fc := range s.conns {
		fc.c.Close()
	}
	s.mu.Unlock()
	return s.HTTP.Close()
}

// give passes a connection to net/http, with the bytes already read from
// it and not consumed; false when the server is closing.
func (s *Server) give(c net.Conn, unread []byte) bool {
	if len(unread) > 0 {
		if tc, ok := c.(*tls.Conn); ok {
			c = &replayTLSConn{replayConn{Conn: c, unread: unread}, tc}
		} else {
			c = &replayConn{Conn: c, unread: unread}
		}
	}
	select {
	case s.handoff.conns <- c:
		return true
	case <-s.handoff.done:
		return false
	}
}

// handoffListener is the listener the net/http server serves: its
// connections are the ones the fast path handed over.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// replayConn reads the bytes the fast path read ahead before the rest of
// the connection.
type replayConn struct {
	net.Conn
	unread []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.unread) > 0 {
		n := copy(p, c.unread)
		c.unread = c.unread[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// replayTLSConn is a replayConn over TLS. net/http takes the connection
// state from it for Request.TLS, as it would from the *tls.Conn it wraps.
type replayTLSConn struct {
	replayConn
	tc *tls.Conn
}

func (c *replayTLSConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }

// CloseWrite lets net/http half-close the connection after an error
// answer, as it does with a *net.TCPConn.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
