package signin

// The gateway's Guard in a cluster: the gateway there keeps no store of
// its own, so RemoteGuard asks aim's API, which answers through
// GuardHandler with the StoreGuard it has over its store.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/gateway"
)

// GuardHandler's paths, on the apex of aim's API. The three POSTs answer
// for a credential the caller presents, nothing else; the GET sends a
// browser on to the platform's sign-in.
const (
	// GuardPrefix starts every path below.
	GuardPrefix      = "/auth/guard/"
	GuardTokenPath   = GuardPrefix + "token"
	GuardSessionPath = GuardPrefix + "session"
	GuardRedeemPath  = GuardPrefix + "redeem"
	GuardSignInPath  = GuardPrefix + "signin"
)

// guardRequest is what RemoteGuard posts: a personal access token, a
// per-solution session's secret or a one-time code, and the solution.
type guardRequest struct {
	Secret   string `json:"secret"`
	Solution string `json:"solution,omitempty"`
}

// guardIdentity is auth.Identity on the wire.
type guardIdentity struct {
	Role          auth.Role `json:"role"`
	Provider      string    `json:"provider,omitempty"`
	Email         string    `json:"email,omitempty"`
	EmailVerified bool      `json:"emailVerified,omitempty"`
	Name          string    `json:"name,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	TokenID       string    `json:"tokenId,omitempty"`
}

// guardSession is a redeemed code's per-solution session.
type guardSession struct {
	Secret        string `json:"secret"`
	MaxAgeSeconds int64  `json:"maxAgeSeconds"`
}

// guardRefusal is the answer to a credential the Guard refused (401).
type guardRefusal struct {
	Error string `json:"error"`
}

// maxGuardRequest bounds a request's body: a secret and a name.
const maxGuardRequest = 4 << 10

// GuardHandler serves g to RemoteGuards: POST GuardTokenPath and
// GuardSessionPath answer the identity behind a credential (200) or why
// it is refused (401, g's own words, which aim serve's gateway would show
// too); POST GuardRedeemPath exchanges a one-time code for a per-solution
// session; GET GuardSignInPath?solution=&return= redirects to
// g.SignInURL. Mount it at GuardPrefix.
func GuardHandler(g gateway.Guard) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+GuardTokenPath, func(w http.ResponseWriter, r *http.Request) {
		if req, ok := readGuardRequest(w, r); ok {
			id, err := g.Token(r.Context(), req.Secret)
			answerIdentity(w, r, id, err)
		}
	})
	mux.HandleFunc("POST "+GuardSessionPath, func(w http.ResponseWriter, r *http.Request) {
		if req, ok := readGuardRequest(w, r); ok {
			id, err := g.Session(r.Context(), req.Secret, req.Solution)
			answerIdentity(w, r, id, err)
		}
	})
	mux.HandleFunc("POST "+GuardRedeemPath, func(w http.ResponseWriter, r *http.Request) {
		req, ok := readGuardRequest(w, r)
		if !ok {
			return
		}
		secret, maxAge, err := g.Redeem(r.Context(), req.Secret, req.Solution)
		if err != nil {
			refuse(w, r, err)
			return
		}
		writeGuardJSON(w, http.StatusOK, guardSession{Secret: secret, MaxAgeSeconds: int64(maxAge / time.Second)})
	})
	mux.HandleFunc("GET "+GuardSignInPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, g.SignInURL(q.Get("solution"), q.Get("return")), http.StatusFound)
	})
	return mux
}

// readGuardRequest decodes a request strictly; a missing secret or
// solution is answered 400 here, as no Guard could find one.
func readGuardRequest(w http.ResponseWriter, r *http.Request) (guardRequest, bool) {
	var req guardRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxGuardRequest))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	switch {
	case err != nil:
		http.Error(w, "a guard request is JSON {\"secret\": …, \"solution\": …}: "+err.Error(), http.StatusBadRequest)
	case req.Secret == "":
		http.Error(w, "a guard request needs the secret it asks about", http.StatusBadRequest)
	case req.Solution == "" && r.URL.Path != GuardTokenPath:
		http.Error(w, "a guard request about a session or a code names its solution", http.StatusBadRequest)
	default:
		return req, true
	}
	return req, false
}

func answerIdentity(w http.ResponseWriter, r *http.Request, id auth.Identity, err error) {
	if err != nil {
		refuse(w, r, err)
		return
	}
	writeGuardJSON(w, http.StatusOK, guardIdentity{Role: id.Role, Provider: id.Provider, Email: id.Email,
		EmailVerified: id.EmailVerified, Name: id.Name, Groups: id.Groups, TokenID: id.TokenID})
}

// refuse answers a Guard's error. The caller went away: nothing to say.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return
	}
	writeGuardJSON(w, http.StatusUnauthorized, guardRefusal{Error: err.Error()})
}

func writeGuardJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// The remote cache's bounds.
const (
	defaultRemoteTTL = 10 * time.Second
	maxRemoteTTL     = 30 * time.Second
	defaultMaxCached = 10_000
)

// RemoteGuard is a gateway.Guard that asks aim's API (GuardHandler) about
// each credential, for `aim gateway` in a cluster. It remembers the
// identities it learns for CacheTTL, since every request to a private
// solution asks; it remembers no refusal, so a token made a moment ago
// works at once. Use it by pointer; the zero value of each optional field
// takes the default named.
type RemoteGuard struct {
	// URL is aim's API, as the gateway reaches it (its --api-upstream),
	// e.g. http://aim-api.aim.svc. Required.
	URL string
	// SignIn is the public URL of GuardSignInPath on the platform's apex,
	// to which browsers are sent to sign in, e.g.
	// https://aim.example.com/auth/guard/signin. Required.
	SignIn string
	// HTTPClient asks the API. Nil means a client with a 5 s timeout.
	HTTPClient *http.Client
	// CacheTTL is how long an identity is reused without asking again,
	// and so how long a revoked token or an ended session may still
	// work here. Zero means 10 s; more than 30 s is taken as 30 s.
	CacheTTL time.Duration
	// MaxCached bounds the identities remembered. Zero means 10,000.
	MaxCached int
	// Logger gets the API's failures, which callers are told of only
	// vaguely. Nil means slog.Default().
	Logger *slog.Logger

	once   sync.Once
	client *http.Client
	cache  remoteCache
	// now is the cache's clock; tests set it.
	now func() time.Time
}

var _ gateway.Guard = (*RemoteGuard)(nil)

func (g *RemoteGuard) init() {
	g.once.Do(func() {
		g.client = g.HTTPClient
		if g.client == nil {
			g.client = &http.Client{Timeout: 5 * time.Second}
		}
		if g.now == nil {
			g.now = time.Now
		}
		g.cache.max = cmp.Or(g.MaxCached, defaultMaxCached)
		g.cache.ttl = min(cmp.Or(g.CacheTTL, defaultRemoteTTL), maxRemoteTTL)
		g.cache.entries = map[[sha256.Size]byte]remoteEntry{}
		if g.Logger == nil {
			g.Logger = slog.Default()
		}
	})
}

// Token asks the API who a personal access token is.
func (g *RemoteGuard) Token(ctx context.Context, secret string) (auth.Identity, error) {
	return g.identity(ctx, GuardTokenPath, guardRequest{Secret: secret})
}

// Session asks the API whose a per-solution session is.
func (g *RemoteGuard) Session(ctx context.Context, secret, solution string) (auth.Identity, error) {
	return g.identity(ctx, GuardSessionPath, guardRequest{Secret: secret, Solution: solution})
}

// Redeem has the API exchange a one-time code for a per-solution session.
// A code is good once, so nothing of it is cached.
func (g *RemoteGuard) Redeem(ctx context.Context, code, solution string) (string, time.Duration, error) {
	g.init()
	var s guardSession
	if err := g.post(ctx, GuardRedeemPath, guardRequest{Secret: code, Solution: solution}, &s); err != nil {
		return "", 0, err
	}
	if s.Secret == "" || s.MaxAgeSeconds <= 0 {
		g.Logger.Warn("aim's API redeemed a sign-in code for no session", "solution", solution)
		return "", 0, errAPIUnavailable
	}
	return s.Secret, time.Duration(s.MaxAgeSeconds) * time.Second, nil
}

// SignInURL is SignIn with the solution and the path to come back to.
func (g *RemoteGuard) SignInURL(solution, returnTo string) string {
	return g.SignIn + "?" + url.Values{"solution": {solution}, "return": {returnTo}}.Encode()
}

func (g *RemoteGuard) identity(ctx context.Context, path string, req guardRequest) (auth.Identity, error) {
	g.init()
	key := sha256.Sum256([]byte(path + "\x00" + req.Solution + "\x00" + req.Secret))
	now := g.now()
	if id, ok := g.cache.get(key, now); ok {
		return id, nil
	}
	var w guardIdentity
	if err := g.post(ctx, path, req, &w); err != nil {
		return auth.Identity{}, err
	}
	if !w.Role.Valid() {
		g.Logger.Warn("aim's API answered an identity without a role", "path", path)
		return auth.Identity{}, errAPIUnavailable
	}
	id := auth.Identity{Role: w.Role, Provider: w.Provider, Email: w.Email, EmailVerified: w.EmailVerified,
		Name: w.Name, Groups: w.Groups, TokenID: w.TokenID}
	g.cache.put(key, id, now)
	return id, nil
}

// errAPIUnavailable is what a visitor learns when the API cannot answer:
// the details (its address, its error) go to the log.
var errAPIUnavailable = errors.New("aim's API could not check it just now; try again in a moment")

// post sends req to the API and decodes a 200's body into out. A 401 is
// the Guard's refusal, returned in its words; anything else is logged and
// returned as errAPIUnavailable.
func (g *RemoteGuard) post(ctx context.Context, path string, req guardRequest, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding a guard request: %w", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(g.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		g.Logger.Error("cannot ask aim's API about a credential", "url", g.URL, "err", err)
		return errAPIUnavailable
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.Logger.Warn("aim's API did not answer about a credential", "url", g.URL+path, "err", err)
		return errAPIUnavailable
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		g.Logger.Warn("reading aim's API's answer about a credential", "url", g.URL+path, "err", err)
		return errAPIUnavailable
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.Unmarshal(b, out); err != nil {
			g.Logger.Warn("aim's API's answer about a credential is not what a guard answers", "url", g.URL+path, "err", err)
			return errAPIUnavailable
		}
		return nil
	case http.StatusUnauthorized:
		var ref guardRefusal
		if err := json.Unmarshal(b, &ref); err == nil && ref.Error != "" {
			return errors.New(ref.Error)
		}
	}
	g.Logger.Warn("aim's API refused to answer about a credential", "url", g.URL+path, "status", resp.Status, "body", string(b))
	return errAPIUnavailable
}

// remoteCache remembers identities by a hash of what was asked (the
// secrets themselves are not kept), each until its time is up.
type remoteCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[[sha256.Size]byte]remoteEntry
}

type remoteEntry struct {
	id    auth.Identity
	until time.Time
}

func (c *remoteCache) get(key [sha256.Size]byte, now time.Time) (auth.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.until) {
		return auth.Identity{}, false
	}
	return e.id, true
}

// put remembers id; a full cache first forgets what has expired, then,
// if still full, an arbitrary entry (Go's map order), which costs that
// credential one more question to the API and nothing else.
func (c *remoteCache) put(key [sha256.Size]byte, id auth.Identity, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = remoteEntry{id: id, until: now.Add(c.ttl)}
}
