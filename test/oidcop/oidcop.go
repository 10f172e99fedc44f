// Package oidcop runs a real OpenID Connect provider for tests and for the
// demo: zitadel's op server (discovery, JWKS, the authorization code flow
// with PKCE, the token, userinfo and end_session endpoints) over an
// in-memory store of the clients and users it is configured with, and a
// plain HTML login form that a Go HTTP client and a headless browser can
// both fill.
//
// It keeps no sign-in session: every authorization request shows the
// login form, so a test can sign in as another user at once, and a user's
// claims are read at each login (SetUser changes what the next ID token
// says).
package oidcop

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/aimhub/aim/internal/testlog"
)

// Server is a provider bound to its address. Run serves it.
type Server struct {
	// Issuer is the provider's issuer URL: discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string

	ln    net.Listener
	http  *http.Server
	store *storage
}

// New checks cfg, fills its defaults and binds the provider's listener;
// Run serves it and closes the listener when it returns.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("oidcop: listening on %s: %w", cfg.Addr, err)
	}
	issuer := cfg.Issuer
	if issuer == "" {
		issuer = "http://" + ln.Addr().String()
	}
	h, store, err := newHandler(cfg, issuer)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Server{
		Issuer: issuer,
		ln:     ln,
		store:  store,
		http: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Run serves the provider until ctx ends, then shuts it down: requests
// under way get two seconds, then every connection is closed (a browser
// may hold preconnected sockets that Shutdown would wait on).
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("oidcop: serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.http.Shutdown(shutdownCtx); err != nil {
		if err := s.http.Close(); err != nil {
			return fmt.Errorf("oidcop: closing: %w", err)
		}
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("oidcop: serving: %w", err)
	}
	return nil
}

// SetUser adds u, or replaces the user of the same username. Tokens
// already issued keep the claims they carry; the next login and userinfo
// request see the new ones.
func (s *Server) SetUser(u User) error {
	if err := u.validate(); err != nil {
		return err
	}
	s.store.setUser(u)
	return nil
}

// Start runs a provider for t on 127.0.0.1 (on a free port unless
// cfg.Addr says otherwise) and stops it when t ends. Its logs go to t.Log.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testlog.Logger(t, slog.LevelInfo)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("starting the OpenID provider: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stopping the OpenID provider: %v", err)
		}
	})
	return s
}

// newHandler builds the provider's routes: zitadel's op for the OpenID
// endpoints, and the login and signed-out pages beside them, all under
// the issuer's path.
func newHandler(cfg Config, issuer string) (http.Handler, *storage, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidcop: issuer %q: %w", issuer, err)
	}
	prefix := strings.TrimSuffix(u.Path, "/")
	store, err := newStorage(cfg, prefix+loginPath)
	if err != nil {
		return nil, nil, err
	}
	var key [32]byte // encrypts the opaque access tokens
	rand.Read(key[:])
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                key,
		DefaultLogoutRedirectURI: prefix + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedScopes:          []string{"openid", "profile", "email", groupsScope},
		SupportedClaims:          append(op.DefaultSupportedClaims, cfg.GroupsClaim),
	}, store, op.StaticIssuer(issuer),
		// Tests and the demo serve plain HTTP on loopback; without this
		// zitadel's op refuses an http issuer.
		op.WithAllowInsecure())
	if err != nil {
		return nil, nil, fmt.Errorf("oidcop: building the provider: %w", err)
	}
	l := &login{
		store:    store,
		logger:   cfg.Logger,
		action:   prefix + loginPath,
		callback: op.AuthCallbackURL(provider),
		issuer:   issuer,
	}
	mux := http.NewServeMux()
	mux.Handle(loginPath, l)
	mux.HandleFunc(loggedOutPath, loggedOut)
	mux.Handle("/", provider)
	if prefix == "" {
		return mux, store, nil
	}
	root := http.NewServeMux()
	root.Handle(prefix+"/", http.StripPrefix(prefix, mux))
	return root, store, nil
}
