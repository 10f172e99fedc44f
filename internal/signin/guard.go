package signin

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/store"
)

// The bounds of StoreGuard's cache.
const (
	// GuardCacheTTL is the longest a revoked token or an ended session
	// keeps working on a private solution: what the guard learnt of it
	// is kept this long at most.
	GuardCacheTTL = 30 * time.Second
	// guardCacheSize bounds the credentials remembered at once.
	guardCacheSize = 4096
)

// GuardStore is the part of aim's store the guard reads.
type GuardStore interface {
	VerifyToken(ctx context.Context, secret string) (*store.Token, error)
	GetSession(ctx context.Context, secret string) (*store.Session, error)
	RedeemCode(ctx context.Context, code, solution string) (*store.Session, error)
	CreateSession(ctx context.Context, se store.Session) (string, error)
}

// StoreGuard is the gateway.Guard of `aim serve`: it checks personal
// access tokens and per-solution sessions against the store, and makes
// per-solution sessions from the one-time codes of the apex's hand-off.
//
// Every request to a private solution asks it, so it remembers positive
// answers for GuardCacheTTL at most (never past the credential's own
// expiry), up to guardCacheSize of them: a busy private solution does not
// cost a store read per request, and a token revoked or a session ended
// elsewhere stops working within GuardCacheTTL. A sign-out on this
// process (ForgetSessionsOf) takes effect at once. Refusals are not
// remembered: a new session works at once, and a wrong secret costs a
// lookup by hash, behind the gateway's rate limits.
type StoreGuard struct {
	st        GuardStore
	signInURL string
	now       func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	id     auth.Identity
	parent string // the platform session a per-solution one came from
	until  time.Time
}

var _ gateway.Guard = (*StoreGuard)(nil)

// errWrongSolution refuses a per-solution session on another solution's
// host.
var errWrongSolution = errors.New("the session is for another solution")

// NewStoreGuard returns a guard on st whose SignInURL is apexURL's
// /auth/solution (with sign-in off, that page says so).
func NewStoreGuard(st GuardStore, apexURL string) (*StoreGuard, error) {
	apex, err := ParseApexURL(apexURL)
	if err != nil {
		return nil, err
	}
	return &StoreGuard{st: st, signInURL: apex.String() + "/auth/solution", now: time.Now, cache: map[[sha256.Size]byte]cached{}}, nil
}

// Token returns whom a personal access token stands for.
func (g *StoreGuard) Token(ctx context.Context, secret string) (auth.Identity, error) {
	key := cacheKey("token", "", secret)
	if id, ok := g.lookup(key); ok {
		return id, nil
	}
	t, err := g.st.VerifyToken(ctx, secret)
	if err != nil {
		return auth.Identity{}, err
	}
	id := t.Identity()
	g.remember(key, cached{id: id, until: t.ExpiresAt})
	return id, nil
}

// Session returns whom a per-solution session of solution stands for.
func (g *StoreGuard) Session(ctx context.Context, secret, solution string) (auth.Identity, error) {
	key := cacheKey("session", solution, secret)
	if id, ok := g.lookup(key); ok {
		return id, nil
	}
	se, err := g.st.GetSession(ctx, secret)
	if err != nil {
		return auth.Identity{}, err
	}
	if se.Solution != solution {
		return auth.Identity{}, errWrongSolution
	}
	id := identityOf(se)
	g.remember(key, cached{id: id, parent: se.Parent, until: se.ExpiresAt})
	return id, nil
}

// Redeem turns the apex's one-time code into a session of solution, for
// the person and as long as the platform session it came from.
func (g *StoreGuard) Redeem(ctx context.Context, code, solution string) (string, time.Duration, error) {
	parent, err := g.st.RedeemCode(ctx, code, solution)
	if err != nil {
		return "", 0, err
	}
	se := *parent
	se.ID, se.Solution, se.Parent = "", solution, parent.ID
	secret, err := g.st.CreateSession(ctx, se)
	if err != nil {
		return "", 0, err
	}
	return secret, parent.ExpiresAt.Sub(g.now()), nil
}

// SignInURL is the apex's hand-off page for solution, back to returnTo.
func (g *StoreGuard) SignInURL(solution, returnTo string) string {
	return g.signInURL + "?" + url.Values{"name": {solution}, "return": {returnTo}}.Encode()
}

// ForgetSessionsOf drops what the guard remembers of the per-solution
// sessions made from the platform session whose ID is parent, which
// just ended.
func (g *StoreGuard) ForgetSessionsOf(parent string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, c := range g.cache {
		if c.parent == parent {
			delete(g.cache, k)
		}
	}
}

// cacheKey names a credential in the cache by a hash, so that the cache
// holds no secret.
func cacheKey(kind, solution, secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(kind + "\x00" + solution + "\x00" + secret))
}

func (g *StoreGuard) lookup(key [sha256.Size]byte) (auth.Identity, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.cache[key]
	if !ok {
		return auth.Identity{}, false
	}
	if !g.now().Before(c.until) {
		delete(g.cache, key)
		return auth.Identity{}, false
	}
	return c.id, true
}

// remember keeps c for GuardCacheTTL, or until c.until if that is
// sooner (zero c.until: no expiry of its own).
func (g *StoreGuard) remember(key [sha256.Size]byte, c cached) {
	now := g.now()
	if bound := now.Add(GuardCacheTTL); c.until.IsZero() || c.until.After(bound) {
		c.until = bound
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.cache) >= guardCacheSize {
		for k, old := range g.cache {
			if !now.Before(old.until) {
				delete(g.cache, k)
			}
		}
	}
	if len(g.cache) >= guardCacheSize {
		// Full of live entries: drop half, at random (map order); they
		// are read from the store again when asked.
		for k := range g.cache {
			if len(g.cache) <= guardCacheSize/2 {
				break
			}
			delete(g.cache, k)
		}
	}
	g.cache[key] = c
}
