package signin

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/store"
)

// guardClock moves a StoreGuard's clock.
type guardClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *guardClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *guardClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newGuard(t *testing.T) (*StoreGuard, *store.Store, *guardClock) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g, err := NewStoreGuard(st, "https://aim.example")
	if err != nil {
		t.Fatal(err)
	}
	c := &guardClock{t: time.Now()}
	g.now = c.now
	return g, st, c
}

func TestGuardTokens(t *testing.T) {
	g, st, clock := newGuard(t)
	ctx := context.Background()
	if err := st.PutProvider(ctx, &store.Provider{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	mk := func(tok store.Token) (string, *store.Token) {
		t.Helper()
		sec, stored, err := st.CreateToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return sec, stored
	}
	visitor, vt := mk(store.Token{Name: "ann's laptop", Role: store.RoleVisitor, Email: "ann@example.test", Groups: []string{"staff"}})
	admin, _ := mk(store.Token{Name: "admin", Role: store.RoleAdmin})
	provider, _ := mk(store.Token{Name: "ci", Role: store.RoleProvider, Provider: "acme"})
	for _, tc := range []struct {
		name   string
		secret string
		want   auth.Identity
	}{
		{"a visitor's token stands for its person, verified", visitor,
			auth.Identity{Role: auth.Visitor, Email: "ann@example.test", EmailVerified: true, Groups: []string{"staff"}, TokenID: vt.ID}},
		{"an admin's", admin, auth.Identity{Role: auth.Admin}},
		{"a provider's", provider, auth.Identity{Role: auth.Provider, Provider: "acme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := g.Token(ctx, tc.secret)
			if err != nil || id.Role != tc.want.Role || id.Provider != tc.want.Provider || id.Email != tc.want.Email ||
				id.EmailVerified != tc.want.EmailVerified || !slices.Equal(id.Groups, tc.want.Groups) || (tc.want.TokenID != "" && id.TokenID != tc.want.TokenID) {
				t.Errorf("Token = %+v, %v; want %+v", id, err, tc.want)
			}
		})
	}
	if _, err := g.Token(ctx, "aim_unknown"); !errors.Is(err, store.ErrTokenUnknown) {
		t.Errorf("an unknown token: %v", err)
	}

	// A revoked token works on for what is left of the cache's bound,
	// then no more.
	if err := st.RevokeToken(ctx, vt.ID); err != nil {
		t.Fatal(err)
	}
	clock.advance(GuardCacheTTL - time.Second)
	if _, err := g.Token(ctx, visitor); err != nil {
		t.Errorf("within the cache's bound a revoked token was refused (%v): the cache was not used", err)
	}
	clock.advance(time.Second)
	if _, err := g.Token(ctx, visitor); !errors.Is(err, store.ErrTokenRevoked) {
		t.Errorf("past the cache's bound a revoked token: %v, want ErrTokenRevoked", err)
	}

	// A token that expires sooner than the bound is remembered until
	// then only.
	soon, _ := mk(store.Token{Name: "brief", Role: store.RoleAdmin, ExpiresAt: time.Now().Add(5 * time.Second)})
	if _, err := g.Token(ctx, soon); err != nil {
		t.Fatal(err)
	}
	c := g.cache[cacheKey("token", "", soon)]
	if c.until.After(time.Now().Add(5 * time.Second)) {
		t.Errorf("a token expiring in 5s is remembered until %s", c.until)
	}
}

func TestGuardSessions(t *testing.T) {
	g, st, clock := newGuard(t)
	ctx := context.Background()
	apex, err := st.CreateSession(ctx, store.Session{Subject: "ann", Email: "ann@example.test", EmailVerified: true, Role: store.RoleVisitor,
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	code, err := st.CreateCode(ctx, apex, "vault", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Redeem(ctx, code+"x", "vault"); !errors.Is(err, store.ErrCodeInvalid) {
		t.Errorf("a wrong code: %v", err)
	}
	secret, maxAge, err := g.Redeem(ctx, code, "vault")
	if err != nil || maxAge <= 59*time.Minute || maxAge > time.Hour {
		t.Fatalf("Redeem = %v, %v; want a session for the parent's hour", maxAge, err)
	}
	id, err := g.Session(ctx, secret, "vault")
	if err != nil || id.Email != "ann@example.test" || !id.EmailVerified || id.Role != auth.Visitor {
		t.Errorf("Session = %+v, %v", id, err)
	}
	if _, err := g.Session(ctx, secret, "other"); !errors.Is(err, errWrongSolution) {
		t.Errorf("vault's session on other: %v, want errWrongSolution", err)
	}
	if _, err := g.Session(ctx, apex, "vault"); !errors.Is(err, errWrongSolution) {
		t.Errorf("the platform session on vault's host: %v, want errWrongSolution", err)
	}

	// Signing out elsewhere (another process) ends it within the bound.
	if err := st.DeleteSession(ctx, apex); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Session(ctx, secret, "vault"); err != nil {
		t.Errorf("within the cache's bound: %v", err)
	}
	clock.advance(GuardCacheTTL)
	if _, err := g.Session(ctx, secret, "vault"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("past the cache's bound an ended session: %v, want ErrNotFound", err)
	}
}

// The cache never holds more than its bound, however many credentials
// are asked about.
func TestGuardCacheBound(t *testing.T) {
	g, _, clock := newGuard(t)
	for i := range 3 * guardCacheSize {
		g.remember(sha256.Sum256([]byte(strconv.Itoa(i))), cached{id: auth.Identity{Role: auth.Admin}})
		if len(g.cache) > guardCacheSize {
			t.Fatalf("after %d entries the cache holds %d, over its bound %d", i+1, len(g.cache), guardCacheSize)
		}
		if i == guardCacheSize {
			clock.advance(GuardCacheTTL) // the first ones expire
		}
	}
}

func TestGuardSignInURL(t *testing.T) {
	g, _, _ := newGuard(t)
	if got, want := g.SignInURL("vault", "/a b?c=d&e"), "https://aim.example/auth/solution?name=vault&return=%2Fa+b%3Fc%3Dd%26e"; got != want {
		t.Errorf("SignInURL = %s, want %s", got, want)
	}
}
