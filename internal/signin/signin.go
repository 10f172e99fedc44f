// Package signin signs people in to aim by OpenID Connect, on the apex
// host, and lets the gateway of `aim serve` check the credentials of
// requests for private solutions against the store.
//
// The protocol is go-oidc's (discovery, ID token checks) and x/oauth2's
// (the authorization code flow, PKCE); this package keeps what aim adds:
//
//   - GET /auth/login starts the flow. Its state, nonce, PKCE verifier
//     and return address ride in the __Host-aim_login cookie, signed
//     with a key from the store, so that any API replica can finish what
//     another started.
//   - GET /auth/callback checks them, exchanges the code, verifies the ID
//     token, maps its claims to a role, makes a store session and sets it
//     as __Host-aim_session on the apex.
//   - POST /auth/logout ends the session and the per-solution ones made
//     from it, then the provider's session where it says how.
//   - GET /auth/solution hands the session to one private solution's host
//     with a one-time code, for those the solution admits.
//
// Every cookie of aim's is a __Host- cookie, which the browser keeps for
// the exact host that set it over a secure connection, and which no other
// host (no solution's subdomain) can set, overwrite or read.
// docs/security.md has the threat model.
package signin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/web"
)

// The cookies of the apex host.
const (
	// SessionCookie holds a platform session's secret.
	SessionCookie = "__Host-aim_session"
	// loginCookie holds a sign-in under way, for loginLifetime.
	loginCookie = "__Host-aim_login"
)

const (
	// DefaultSessionLifetime is how long a sign-in lasts unless
	// Config.SessionLifetime says otherwise.
	DefaultSessionLifetime = 12 * time.Hour
	// loginLifetime bounds the time between leaving for the provider's
	// login form and coming back.
	loginLifetime = 10 * time.Minute
	// codeLifetime bounds the hand-off to a solution's host: a redirect
	// or two.
	codeLifetime = 60 * time.Second
)

// Config configures sign-in. Issuer empty means none: aim then has no
// sign-in links, and everyone without a token is anonymous.
type Config struct {
	// Issuer is the OpenID provider's issuer URL; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret are aim's registration at the provider:
	// a confidential client whose redirect URI is ApexURL +
	// "/auth/callback" and whose post-logout redirect URI is ApexURL + "/".
	ClientID, ClientSecret string
	// ApexURL is the platform's address as browsers see it: scheme, host
	// and port only ("https://aim.example.com"). Solution name is at the
	// same scheme and port, on host name.<host>. Required.
	ApexURL string
	// AdminGroup makes the members of this group (the ID token's groups
	// claim) admins. Empty means no one is an admin by signing in.
	AdminGroup string
	// ProviderClaim names a claim of the ID token that names the aim
	// provider a person acts for; a name that is no existing provider
	// makes them a visitor. Empty means no one is a provider by signing
	// in.
	ProviderClaim string
	// SessionLifetime is how long a sign-in lasts. Zero means
	// DefaultSessionLifetime.
	SessionLifetime time.Duration
	// HTTPClient talks to the provider. Nil means a client with a
	// 10-second timeout.
	HTTPClient *http.Client
	// Guard, when set, forgets what it cached of a session that signs
	// out here, so that its per-solution sessions end at once on this
	// process (elsewhere within the guard's cache bound).
	Guard *StoreGuard
	// Logger receives sign-ins, refusals and the provider's failures. Nil
	// means slog's default.
	Logger *slog.Logger
}

// Store is the part of aim's store that sign-in uses.
type Store interface {
	CreateSession(ctx context.Context, se store.Session) (string, error)
	GetSession(ctx context.Context, secret string) (*store.Session, error)
	DeleteSession(ctx context.Context, secret string) error
	CreateCode(ctx context.Context, sessionSecret, solution string, ttl time.Duration) (string, error)
	GetProvider(ctx context.Context, name string) (*store.Provider, error)
	Key(ctx context.Context, name string) ([]byte, error)
}

// Solutions finds a solution, to decide whether a person may have a
// session on its host: api.Controller's Get on both runtimes.
type Solutions interface {
	Get(ctx context.Context, name string) (*solution.Info, error)
}

// Notices renders aim's notice pages (web.Pages does).
type Notices interface {
	Notice(w http.ResponseWriter, v web.Viewer, status int, n web.Notice)
}

// SignIn is the apex's /auth/ handler and the pages' source of who is
// signed in.
type SignIn struct {
	cfg   Config
	st    Store
	sols  Solutions
	pages Notices
	log   *slog.Logger
	apex  *url.URL
	mux   *http.ServeMux

	mu       sync.Mutex
	provider *provider // nil until discovery succeeds
	key      []byte    // nil until read from the store
}

// provider is what discovery found.
type provider struct {
	oidc       *oidc.Provider
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
}

// New checks cfg and builds the handler. It does not talk to the
// provider: discovery happens at the first sign-in (and again after a
// failure), so that aim serves its solutions while the provider is down.
func New(cfg Config, st Store, sols Solutions, pages Notices) (*SignIn, error) {
	apex, err := ParseApexURL(cfg.ApexURL)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer != "" {
		if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("the OpenID issuer %q is not an http(s) URL", cfg.Issuer)
		}
		if cfg.ClientID == "" || cfg.ClientSecret == "" {
			return nil, errors.New("signing in by OpenID Connect needs the client's id and secret")
		}
	}
	if cfg.SessionLifetime < 0 {
		return nil, fmt.Errorf("the session lifetime %s is negative", cfg.SessionLifetime)
	}
	cfg.SessionLifetime = cmp.Or(cfg.SessionLifetime, DefaultSessionLifetime)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	s := &SignIn{cfg: cfg, st: st, sols: sols, pages: pages, log: cmp.Or(cfg.Logger, slog.Default()), apex: apex, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /auth/login", s.login)
	s.mux.HandleFunc("GET /auth/callback", s.callback)
	s.mux.HandleFunc("POST /auth/logout", s.logout)
	s.mux.HandleFunc("GET /auth/solution", s.handOff)
	s.mux.HandleFunc("/auth/", func(w http.ResponseWriter, r *http.Request) {
		s.notice(w, r, http.StatusNotFound, web.Notice{Title: "Not found", Paragraphs: []string{"There is no page " + r.URL.Path + "."}})
	})
	return s, nil
}

// ParseApexURL checks an apex URL: http or https, a host, no path.
func ParseApexURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("the apex URL %q is not an http(s) URL of a host alone", raw)
	}
	return u, nil
}

// Enabled reports whether people can sign in.
func (s *SignIn) Enabled() bool { return s.cfg.Issuer != "" }

// RedirectURL is the address the provider sends browsers back to.
func (s *SignIn) RedirectURL() string { return s.apex.String() + "/auth/callback" }

// PostLogoutURL is the address the provider sends browsers to after
// signing out there.
func (s *SignIn) PostLogoutURL() string { return s.apex.String() + "/" }

func (s *SignIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Nothing under /auth/ may be kept by a cache: each answer is one
	// person's, or a step of one sign-in.
	w.Header().Set("Cache-Control", "no-store")
	s.mux.ServeHTTP(w, r)
}

// Identify returns who a request on the apex comes from: the person whose
// platform session __Host-aim_session holds, else an anonymous visitor.
//
// Only that cookie counts. A solution's page can set cookies for the
// parent domain, which the browser then sends to the apex too, under any
// name it likes (aim_session, say); it cannot set a __Host- cookie for
// another host, since the browser takes one only from the host it names,
// without a Domain attribute, Secure. So a cookie without the prefix
// could be a tenant's plant, and the apex never reads one.
func (s *SignIn) Identify(r *http.Request) auth.Identity {
	se, _ := s.session(r)
	return identityOf(se)
}

// session is the platform session r carries, with its secret; nil when
// none (or sign-in is off).
func (s *SignIn) session(r *http.Request) (*store.Session, string) {
	if !s.Enabled() {
		return nil, ""
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, ""
	}
	se, err := s.st.GetSession(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("reading a session", "err", err)
		}
		return nil, ""
	}
	if se.Solution != "" {
		return nil, "" // a per-solution session is good on its host only
	}
	return se, c.Value
}

// identityOf is the identity a session stands for; nil is anonymous.
func identityOf(se *store.Session) auth.Identity {
	if se == nil {
		return auth.Identity{}
	}
	return auth.Identity{Role: auth.Role(se.Role), Provider: se.Provider, Email: se.Email, EmailVerified: se.EmailVerified,
		Name: se.Name, Groups: se.Groups}
}

// Viewer is who looks at an apex page, with the sign-in link or the
// sign-out form its header shows.
func (s *SignIn) Viewer(r *http.Request) web.Viewer {
	se, _ := s.session(r)
	return s.viewerOf(r, se)
}

func (s *SignIn) viewerOf(r *http.Request, se *store.Session) web.Viewer {
	switch {
	case !s.Enabled():
		return web.Viewer{}
	case se == nil:
		back := r.URL.RequestURI()
		if strings.HasPrefix(r.URL.Path, "/auth/") {
			back = "/"
		}
		return web.Viewer{SignIn: "/auth/login?" + url.Values{"return": {back}}.Encode()}
	}
	v := web.Viewer{Identity: identityOf(se), SignOut: "/auth/logout"}
	if key, err := s.signingKey(r.Context()); err == nil {
		v.CSRF = csrfToken(key, se.ID)
	}
	return v
}

// notice answers with one of aim's notice pages, its header showing
// whoever is signed in.
func (s *SignIn) notice(w http.ResponseWriter, r *http.Request, status int, n web.Notice) {
	s.pages.Notice(w, s.Viewer(r), status, n)
}

// discover returns the provider, asking its discovery document the first
// time and again after a failure.
func (s *SignIn) discover(ctx context.Context) (*provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, s.cfg.HTTPClient), s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the OpenID provider %s: %w", s.cfg.Issuer, err)
	}
	var meta struct {
		EndSession string   `json:"end_session_endpoint"`
		Scopes     []string `json:"scopes_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the discovery document of %s: %w", s.cfg.Issuer, err)
	}
	scopes := []string{oidc.ScopeOpenID, "profile", "email"}
	for _, sc := range meta.Scopes {
		// Some providers (Dex) send groups only when asked; others
		// refuse a scope they don't list.
		if sc == "groups" {
			scopes = append(scopes, sc)
		}
	}
	s.provider = &provider{
		oidc: op,
		oauth: oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Endpoint: op.Endpoint(),
			RedirectURL: s.RedirectURL(), Scopes: scopes},
		verifier:   op.Verifier(&oidc.Config{ClientID: s.cfg.ClientID}),
		endSession: meta.EndSession,
	}
	return s.provider, nil
}

// signingKey is the key of the login cookie and the sign-out form, the
// same for every aim process on the store.
func (s *SignIn) signingKey(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	k, err := s.st.Key(ctx, "signin")
	if err != nil {
		return nil, err
	}
	s.key = k
	return k, nil
}

// solutionURL is where solution name is, as browsers reach it.
func (s *SignIn) solutionURL(name string) string {
	return s.apex.Scheme + "://" + name + "." + s.apex.Host
}
