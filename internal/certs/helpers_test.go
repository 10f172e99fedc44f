package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/aimhub/aim/internal/testlog"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLogger logs through t until the test ends.
func testLogger(t *testing.T) *slog.Logger { return testlog.Logger(t, slog.LevelInfo) }

// gateway is what aim serve will build from a Manager: an HTTPS server
// on the Manager's TLS config and an HTTP server on its HTTPHandler.
type gateway struct {
	httpLn, httpsLn net.Listener
	// challenges counts ACME HTTP-01 requests the HTTP listener got.
	challenges atomic.Int64
}

// listen takes the two ports first: pebble and the Manager need them
// before anything serves.
func listen(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{}
	var err error
	if g.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if g.httpsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.httpLn.Close(); g.httpsLn.Close() })
	return g
}

func (g *gateway) httpPort() int  { return g.httpLn.Addr().(*net.TCPAddr).Port }
func (g *gateway) httpsPort() int { return g.httpsLn.Addr().(*net.TCPAddr).Port }

// serve serves app over HTTPS (with HSTS) and the redirect over HTTP.
func (g *gateway) serve(t *testing.T, m *Manager, app http.Handler) {
	t.Helper()
	errLog := slog.NewLogLogger(testLogger(t).Handler(), slog.LevelWarn)
	https := &http.Server{Handler: m.HSTS(app), TLSConfig: m.TLSConfig(), ErrorLog: errLog}
	redirect := m.HTTPHandler(app)
	plain := &http.Server{ErrorLog: errLog, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			g.challenges.Add(1)
		}
		redirect.ServeHTTP(w, r)
	})}
	go func() { _ = https.ServeTLS(g.httpsLn, "", "") }()
	go func() { _ = plain.Serve(g.httpLn) }()
	t.Cleanup(func() { https.Close(); plain.Close() })
}

// client reaches every host name at 127.0.0.1, on the URL's port, and
// trusts only roots (nil: the system's). It does not follow redirects.
func client(roots *x509.CertPool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// handshake connects to the HTTPS listener naming serverName and
// returns the verified chain's leaf.
func handshake(ctx context.Context, g *gateway, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{Config: &tls.Config{ServerName: serverName, RootCAs: roots, NextProtos: []string{"h2"}}}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", g.httpsLn.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	if len(st.VerifiedChains) == 0 {
		return nil, errors.New("no verified chain")
	}
	return st.VerifiedChains[0][0], nil
}

// app answers which host it served.
var app = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.WriteString(w, "hello from "+r.Host)
})

// allowOnly is an Allow that knows the given solutions, and counts asks.
type allowOnly struct {
	mu    sync.Mutex
	names map[string]bool
	asked []string
}

func allow(names ...string) *allowOnly {
	a := &allowOnly{names: map[string]bool{}}
	for _, n := range names {
		a.names[n] = true
	}
	return a
}

func (a *allowOnly) Allow(_ context.Context, name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, name)
	if !a.names[name] {
		return errors.New("no such solution")
	}
	return nil
}

func (a *allowOnly) Asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.asked...)
}
