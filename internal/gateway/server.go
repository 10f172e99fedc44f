package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
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

// Server serves one listener. With the Gateway itself as its handler it
// takes plain HTTP/1.1 requests for awake solutions on a fast path of its
// own (fast.go), and hands every other connection, at a request boundary,
// to a net/http Server that serves it from then on. With any other handler
// (a redirect to HTTPS, say) or over TLS it is that net/http Server alone.
type Server struct {
	// HTTP is the net/http server; its handler serves what the fast path
	// does not.
	HTTP *http.Server
	gw   *Gateway // nil: no fast path

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
	if g, ok := h.(*Gateway); ok {
		s.gw = g
		s.conns = map[*fastConn]struct{}{}
	}
	return s
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

// ServeTLS serves HTTPS on l; net/http does all of it (HTTP/2 included).
func (s *Server) ServeTLS(l net.Listener, cfg *tls.Config) error {
	s.HTTP.TLSConfig = cfg
	return s.HTTP.ServeTLS(l, "", "")
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
	for fc := range s.conns {
		if fc.idle.Load() {
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
		c = &replayConn{Conn: c, unread: unread}
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

// CloseWrite lets net/http half-close the connection after an error
// answer, as it does with a *net.TCPConn.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
