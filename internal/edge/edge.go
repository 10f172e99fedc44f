// Package edge assembles what faces visitors: the gateway's plain-HTTP
// listener and, with TLS, its HTTPS listener, each a gateway.Server, with
// the certificates HTTPS serves and what plain HTTP does beside serving
// (ACME challenges, the redirect to HTTPS). `aim serve` (on either
// runtime) and `aim gateway` build theirs here, so the two differ only in
// where their certificates come from.
//
// The listeners are bound first (Listen), because an ACME manager must
// know their ports before it is built; then Serve starts both servers.
package edge

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/aimhub/aim/internal/gateway"
)

// Certificates is where HTTPS gets its certificates: certs.Manager (the
// internal CA, ACME on one host or in a cluster) or files mounted from a
// Secret (kubegateway).
type Certificates interface {
	// TLSConfig serves HTTPS.
	TLSConfig() *tls.Config
	// HTTPHandler is the plain listener's handler: it answers what the
	// certificates need (ACME HTTP-01) and redirects to HTTPS.
	HTTPHandler(next http.Handler) http.Handler
	// HSTS wraps what HTTPS serves (Strict-Transport-Security, if set).
	HSTS(next http.Handler) http.Handler
}

// Config configures an Edge. Zero values take the defaults named.
type Config struct {
	// HTTP is the plain listen address. Empty means ":8080".
	HTTP string
	// Listener, when set, is used instead of listening on HTTP.
	Listener net.Listener
	// HTTPS is the TLS listen address, bound only when TLS is on. Empty
	// means ":8443".
	HTTPS string
	// LoopbackPlain serves requests whose Host is a loopback IP over plain
	// HTTP even when TLS is on: the CLI on the same machine, which has no
	// certificate to check (`aim serve`). False redirects them too.
	LoopbackPlain bool
	// Server holds the listeners' timeouts and header limit.
	Server gateway.ServerConfig
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Edge is the bound listeners and, once Serve ran, their servers.
type Edge struct {
	cfg        Config
	ln, tlsLn  net.Listener
	plain, sec *gateway.Server
}

// Listen binds the plain listener and, when withTLS, the HTTPS one.
func Listen(cfg Config, withTLS bool) (*Edge, error) {
	cfg.Logger = cmp.Or(cfg.Logger, slog.Default())
	e := &Edge{cfg: cfg, ln: cfg.Listener}
	if e.ln == nil {
		addr := cmp.Or(cfg.HTTP, ":8080")
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		e.ln = ln
	}
	if withTLS {
		addr := cmp.Or(cfg.HTTPS, ":8443")
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			e.ln.Close()
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		e.tlsLn = ln
	}
	return e, nil
}

// Addr is the plain listener's address.
func (e *Edge) Addr() net.Addr { return e.ln.Addr() }

// Ports are the listeners' ports; https is 0 without TLS.
func (e *Edge) Ports() (http, https int) {
	http = e.ln.Addr().(*net.TCPAddr).Port
	if e.tlsLn != nil {
		https = e.tlsLn.Addr().(*net.TCPAddr).Port
	}
	return http, https
}

// Serve starts serving h: on plain HTTP alone when certs is nil, else
// HTTPS with certs and the plain listener as certs' HTTPHandler makes it.
// Errors of either server arrive on the channel (http.ErrServerClosed
// after Shutdown).
func (e *Edge) Serve(h http.Handler, certs Certificates) (<-chan error, error) {
	if (certs != nil) != (e.tlsLn != nil) {
		return nil, errors.New("edge: certificates go with an HTTPS listener (Listen with TLS)")
	}
	sc := e.cfg.Server
	sc.Logger = e.cfg.Logger
	plain := h
	if certs != nil {
		plain = certs.HTTPHandler(h)
		if e.cfg.LoopbackPlain {
			plain = loopbackPlain(h, plain)
		}
	}
	errs := make(chan error, 2)
	e.plain = gateway.NewServer(plain, sc)
	go func() { errs <- e.plain.Serve(e.ln) }()
	if certs != nil {
		e.sec = gateway.NewServer(certs.HSTS(h), sc)
		go func() { errs <- e.sec.ServeTLS(e.tlsLn, certs.TLSConfig()) }()
		e.cfg.Logger.Info("serving HTTPS", "addr", e.tlsLn.Addr().String())
	}
	return errs, nil
}

// SetKeepAlivesEnabled sets keep-alive on both servers; off, answers say
// "Connection: close" (a draining gateway replica).
func (e *Edge) SetKeepAlivesEnabled(on bool) {
	for _, s := range e.servers() {
		s.SetKeepAlivesEnabled(on)
	}
}

// Shutdown stops both servers gracefully, at the same time.
func (e *Edge) Shutdown(ctx context.Context) error {
	ss := e.servers()
	errs := make(chan error, len(ss))
	for _, s := range ss {
		go func() { errs <- s.Shutdown(ctx) }()
	}
	var err error
	for range ss {
		err = errors.Join(err, <-errs)
	}
	return err
}

// Close closes the listeners and servers at once.
func (e *Edge) Close() error {
	err := e.ln.Close()
	if e.tlsLn != nil {
		err = errors.Join(err, e.tlsLn.Close())
	}
	for _, s := range e.servers() {
		err = errors.Join(err, s.Close())
	}
	return err
}

func (e *Edge) servers() []*gateway.Server {
	var ss []*gateway.Server
	for _, s := range []*gateway.Server{e.plain, e.sec} {
		if s != nil {
			ss = append(ss, s)
		}
	}
	return ss
}

// loopbackPlain serves requests addressed to a loopback IP (the CLI on
// this machine, which has no certificate to check) over plain HTTP, and
// sends everything else to the HTTPS redirect.
func loopbackPlain(local, redirect http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil && a.IsLoopback() {
			local.ServeHTTP(w, r)
			return
		}
		redirect.ServeHTTP(w, r)
	})
}
