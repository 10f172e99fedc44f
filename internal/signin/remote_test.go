package signin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/testlog"
)

// countingGuard is a Guard of a few fixed credentials that counts the
// questions it is asked (the protocol's pure logic is under test; the
// store-backed Guard has its own tests).
type countingGuard struct {
	mu       sync.Mutex
	tokens   map[string]auth.Identity
	sessions map[string]auth.Identity // "secret|solution"
	codes    map[string]string        // code -> solution
	asked    atomic.Int64
}

func newCountingGuard() *countingGuard {
	return &countingGuard{
		tokens: map[string]auth.Identity{
			"ada-token":  {Role: auth.Visitor, Email: "ada@example.com", EmailVerified: true, Groups: []string{"cad"}, TokenID: "t1"},
			"acme-token": {Role: auth.Provider, Provider: "acme", TokenID: "t2"},
		},
		sessions: map[string]auth.Identity{"ada-sess|shop": {Role: auth.Visitor, Email: "ada@example.com", Name: "Ada"}},
		codes:    map[string]string{"code-1": "shop"},
	}
}

func (f *countingGuard) Token(_ context.Context, s string) (auth.Identity, error) {
	f.asked.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tokens[s]; ok {
		return id, nil
	}
	return auth.Identity{}, errors.New("unknown API token")
}

func (f *countingGuard) Session(_ context.Context, s, sol string) (auth.Identity, error) {
	f.asked.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.sessions[s+"|"+sol]; ok {
		return id, nil
	}
	return auth.Identity{}, errors.New("no such session")
}

func (f *countingGuard) Redeem(_ context.Context, code, sol string) (string, time.Duration, error) {
	f.asked.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.codes[code] != sol {
		return "", 0, errors.New("the sign-in code is not valid")
	}
	delete(f.codes, code)
	f.sessions["sess-"+code+"|"+sol] = auth.Identity{Role: auth.Visitor, Email: "ada@example.com"}
	return "sess-" + code, 90 * time.Minute, nil
}

func (f *countingGuard) SignInURL(sol, ret string) string {
	return "/auth/signin?" + url.Values{"solution": {sol}, "return": {ret}}.Encode()
}

func (f *countingGuard) addToken(secret string, id auth.Identity) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[secret] = id
}

// remote serves GuardHandler over g and returns a RemoteGuard asking it,
// on a clock the test moves.
func remote(t *testing.T, g gateway.Guard) (*RemoteGuard, *time.Time, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(GuardHandler(g))
	t.Cleanup(srv.Close)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rg := &RemoteGuard{URL: srv.URL + "/", SignIn: "https://aim.example" + GuardSignInPath, Logger: testlog.Logger(t, slog.LevelDebug)}
	rg.now = func() time.Time { return now }
	return rg, &now, srv
}

func TestRemoteGuard(t *testing.T) {
	g := newCountingGuard()
	rg, _, _ := remote(t, g)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		ask     func() (auth.Identity, error)
		want    auth.Identity
		wantErr string
	}{
		{"a visitor's token", func() (auth.Identity, error) { return rg.Token(ctx, "ada-token") }, g.tokens["ada-token"], ""},
		{"a provider's token", func() (auth.Identity, error) { return rg.Token(ctx, "acme-token") }, g.tokens["acme-token"], ""},
		{"an unknown token: the Guard's own words", func() (auth.Identity, error) { return rg.Token(ctx, "forged") }, auth.Identity{}, "unknown API token"},
		{"a session on its solution", func() (auth.Identity, error) { return rg.Session(ctx, "ada-sess", "shop") }, g.sessions["ada-sess|shop"], ""},
		{"the session on another solution", func() (auth.Identity, error) { return rg.Session(ctx, "ada-sess", "other") }, auth.Identity{}, "no such session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.ask()
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("got %+v, %v; want the error %q", id, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(id, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", id, err, tc.want)
			}
		})
	}

	t.Run("redeem, once", func(t *testing.T) {
		secret, maxAge, err := rg.Redeem(ctx, "code-1", "shop")
		if err != nil || secret != "sess-code-1" || maxAge != 90*time.Minute {
			t.Fatalf("got %q %s %v", secret, maxAge, err)
		}
		if _, _, err := rg.Redeem(ctx, "code-1", "shop"); err == nil || err.Error() != "the sign-in code is not valid" {
			t.Errorf("a second redeem: %v", err)
		}
		if id, err := rg.Session(ctx, secret, "shop"); err != nil || id.Email != "ada@example.com" {
			t.Errorf("the redeemed session: %+v %v", id, err)
		}
	})
}

func TestRemoteGuardCache(t *testing.T) {
	ctx := context.Background()
	t.Run("identities are reused for the TTL, then asked again", func(t *testing.T) {
		g := newCountingGuard()
		rg, now, _ := remote(t, g)
		for range 3 {
			if _, err := rg.Token(ctx, "ada-token"); err != nil {
				t.Fatal(err)
			}
			if _, err := rg.Session(ctx, "ada-sess", "shop"); err != nil {
				t.Fatal(err)
			}
		}
		if n := g.asked.Load(); n != 2 {
			t.Errorf("asked %d times within the TTL, want 2", n)
		}
		*now = now.Add(defaultRemoteTTL)
		if _, err := rg.Token(ctx, "ada-token"); err != nil {
			t.Fatal(err)
		}
		if n := g.asked.Load(); n != 3 {
			t.Errorf("asked %d times after the TTL, want 3", n)
		}
	})
	t.Run("a session is cached per solution", func(t *testing.T) {
		g := newCountingGuard()
		rg, _, _ := remote(t, g)
		if _, err := rg.Session(ctx, "ada-sess", "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := rg.Session(ctx, "ada-sess", "other"); err == nil {
			t.Error("a session cached for one solution was taken for another")
		}
	})
	t.Run("refusals are not remembered", func(t *testing.T) {
		g := newCountingGuard()
		rg, _, _ := remote(t, g)
		if _, err := rg.Token(ctx, "new-token"); err == nil {
			t.Fatal("an unknown token was accepted")
		}
		g.addToken("new-token", auth.Identity{Role: auth.Visitor, Email: "bob@example.com"})
		if id, err := rg.Token(ctx, "new-token"); err != nil || id.Email != "bob@example.com" {
			t.Errorf("a token made after a refusal: %+v %v", id, err)
		}
	})
	t.Run("the TTL is at most 30 s", func(t *testing.T) {
		g := newCountingGuard()
		rg, now, _ := remote(t, g)
		rg.CacheTTL = time.Hour
		_, _ = rg.Token(ctx, "ada-token")
		*now = now.Add(maxRemoteTTL)
		_, _ = rg.Token(ctx, "ada-token")
		if n := g.asked.Load(); n != 2 {
			t.Errorf("asked %d times, want 2: a TTL of an hour was not capped", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		g := newCountingGuard()
		for _, s := range []string{"a", "b", "c", "d"} {
			g.addToken(s, auth.Identity{Role: auth.Visitor})
		}
		rg, _, _ := remote(t, g)
		rg.MaxCached = 2
		for _, s := range []string{"a", "b", "c", "d"} {
			if _, err := rg.Token(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(rg.cache.entries); n > 2 {
			t.Errorf("%d identities cached, want at most 2", n)
		}
		if _, err := rg.Token(ctx, "d"); err != nil || g.asked.Load() != 4 {
			t.Errorf("the latest identity was not kept: %v, asked %d times", err, g.asked.Load())
		}
	})
}

// TestRemoteGuardFailures: an API that cannot answer refuses, in words
// that name neither its address nor its error.
func TestRemoteGuardFailures(t *testing.T) {
	ctx := context.Background()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case GuardTokenPath:
			http.Error(w, "database is locked", http.StatusInternalServerError)
		case GuardSessionPath:
			_, _ = io.WriteString(w, `{"email":"no role"}`)
		default:
			_, _ = io.WriteString(w, `not json`)
		}
	}))
	defer broken.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name string
		url  string
		ask  func(*RemoteGuard) error
	}{
		{"API down", gone.URL, func(g *RemoteGuard) error { _, err := g.Token(ctx, "t"); return err }},
		{"API fails", broken.URL, func(g *RemoteGuard) error { _, err := g.Token(ctx, "t"); return err }},
		{"an identity without a role", broken.URL, func(g *RemoteGuard) error { _, err := g.Session(ctx, "s", "shop"); return err }},
		{"a redeem that is not JSON", broken.URL, func(g *RemoteGuard) error { _, _, err := g.Redeem(ctx, "c", "shop"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &RemoteGuard{URL: tc.url, Logger: testlog.Logger(t, slog.LevelDebug)}
			if err := tc.ask(g); !errors.Is(err, errAPIUnavailable) {
				t.Errorf("got %v, want %v", err, errAPIUnavailable)
			}
		})
	}
}

func TestGuardHandlerRequests(t *testing.T) {
	srv := httptest.NewServer(GuardHandler(newCountingGuard()))
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
	}{
		{"no secret", http.MethodPost, GuardTokenPath, `{}`, http.StatusBadRequest},
		{"an unknown field", http.MethodPost, GuardTokenPath, `{"secret":"ada-token","admin":true}`, http.StatusBadRequest},
		{"a session without its solution", http.MethodPost, GuardSessionPath, `{"secret":"ada-sess"}`, http.StatusBadRequest},
		{"a code without its solution", http.MethodPost, GuardRedeemPath, `{"secret":"code-1"}`, http.StatusBadRequest},
		{"too large", http.MethodPost, GuardTokenPath, `{"secret":"` + strings.Repeat("x", maxGuardRequest) + `"}`, http.StatusBadRequest},
		{"GET of a question", http.MethodGet, GuardTokenPath, ``, http.StatusMethodNotAllowed},
		{"a token", http.MethodPost, GuardTokenPath, `{"secret":"ada-token"}`, http.StatusOK},
		{"a refused token", http.MethodPost, GuardTokenPath, `{"secret":"forged"}`, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
			}
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("an identity may be cached on the way: Cache-Control %q", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

// TestSignInThroughTheAPI: a RemoteGuard's sign-in URL reaches the API,
// which sends the browser on to its Guard's sign-in page with the
// solution and the path to return to.
func TestSignInThroughTheAPI(t *testing.T) {
	g := newCountingGuard()
	rg, _, srv := remote(t, g)
	rg.SignIn = srv.URL + GuardSignInPath
	u := rg.SignInURL("shop", "/app?q=1&r=2")
	want := srv.URL + GuardSignInPath + "?return=%2Fapp%3Fq%3D1%26r%3D2&solution=shop"
	if u != want {
		t.Errorf("SignInURL = %s\nwant %s", u, want)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != g.SignInURL("shop", "/app?q=1&r=2") {
		t.Errorf("%d, Location %q; want 302 to %q", resp.StatusCode, loc, g.SignInURL("shop", "/app?q=1&r=2"))
	}
}

// TestGatewayWithRemoteGuard puts a RemoteGuard in a gateway in front of
// a private solution: the gateway decides as with a Guard of its own.
func TestGatewayWithRemoteGuard(t *testing.T) {
	var seen atomic.Pointer[http.Header]
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		seen.Store(&h)
		_, _ = io.WriteString(w, "the solution")
	}))
	defer backend.Close()
	rg, _, _ := remote(t, newCountingGuard())
	gw := gateway.New(gateway.Config{Domain: "aim.example", Logger: testlog.Logger(t, slog.LevelDebug)})
	gw.SetGuard(rg)
	gw.Routes.Set(gateway.RouteSpec{Name: "shop", Title: "Shop", State: gateway.StateReady, Private: true, Owner: "acme",
		Access:    spec.Access{Emails: []string{"ada@example.com"}},
		Upstreams: []gateway.Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{strings.TrimPrefix(backend.URL, "http://")}}}})
	edge := httptest.NewServer(gw)
	defer edge.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name     string
		header   map[string]string
		status   int
		location string
	}{
		{"anonymous API client", nil, http.StatusUnauthorized, ""},
		{"anonymous browser", map[string]string{"Accept": "text/html"}, http.StatusFound,
			"https://aim.example/auth/guard/signin?return=%2Fx&solution=shop"},
		{"forged token", map[string]string{gateway.TokenHeader: "forged"}, http.StatusUnauthorized, ""},
		{"allowed visitor's token", map[string]string{gateway.TokenHeader: "ada-token"}, http.StatusOK, ""},
		{"its provider's token", map[string]string{gateway.TokenHeader: "acme-token"}, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen.Store(nil)
			req, _ := http.NewRequest(http.MethodGet, edge.URL+"/x", nil)
			req.Host = "shop.aim.example"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
				t.Fatalf("%d Location %q: %.200s\nwant %d %q", resp.StatusCode, resp.Header.Get("Location"), b, tc.status, tc.location)
			}
			h := seen.Load()
			if (h != nil) != (tc.status == http.StatusOK) {
				t.Errorf("the solution was reached: %v, want %v", h != nil, tc.status == http.StatusOK)
			}
			if h != nil && h.Get(gateway.TokenHeader) != "" {
				t.Errorf("the solution saw %s", gateway.TokenHeader)
			}
		})
	}
}

// TestRemoteStoreGuard: the RemoteGuard over GuardHandler of aim serve's
// StoreGuard on a real store, as `aim gateway` asks `aim serve --runtime
// kubernetes`: tokens, a code handed over once and the session it makes,
// and the store's refusals in its own words.
func TestRemoteStoreGuard(t *testing.T) {
	g, st, _ := newGuard(t)
	rg, _, _ := remote(t, g)
	ctx := context.Background()
	visitor, tok, err := st.CreateToken(ctx, store.Token{Name: "ada", Role: store.RoleVisitor, Email: "ada@example.com", Groups: []string{"cad"}})
	if err != nil {
		t.Fatal(err)
	}
	revoked, rtok, err := st.CreateToken(ctx, store.Token{Name: "old", Role: store.RoleVisitor, Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, rtok.ID); err != nil {
		t.Fatal(err)
	}
	if id, err := rg.Token(ctx, visitor); err != nil || !reflect.DeepEqual(id, tok.Identity()) {
		t.Errorf("visitor: %+v %v\nwant %+v", id, err, tok.Identity())
	}
	if _, err := rg.Token(ctx, revoked); err == nil || err.Error() != "token "+rtok.ID+": "+store.ErrTokenRevoked.Error() {
		t.Errorf("revoked: %v", err)
	}
	if _, err := rg.Token(ctx, "aim_forged"); err == nil || err.Error() != store.ErrTokenUnknown.Error() {
		t.Errorf("forged: %v", err)
	}

	platform, err := st.CreateSession(ctx, store.Session{Subject: "sub-ada", Email: "ada@example.com", Name: "Ada",
		Role: store.RoleVisitor, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	code, err := st.CreateCode(ctx, platform, "shop", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	secret, maxAge, err := rg.Redeem(ctx, code, "shop")
	if err != nil || maxAge <= 59*time.Minute || maxAge > time.Hour {
		t.Fatalf("redeem: %q %s %v", secret, maxAge, err)
	}
	if _, _, err := rg.Redeem(ctx, code, "shop"); err == nil || err.Error() != store.ErrCodeInvalid.Error() {
		t.Errorf("the code again: %v", err)
	}
	if id, err := rg.Session(ctx, secret, "shop"); err != nil || id.Email != "ada@example.com" || id.Role != auth.Visitor {
		t.Errorf("the solution's session: %+v %v", id, err)
	}
	for _, tc := range []struct{ name, secret, solution string }{
		{"on another solution", secret, "other"},
		{"the platform's own session", platform, "shop"},
		{"no session", "forged", "shop"},
	} {
		if _, err := rg.Session(ctx, tc.secret, tc.solution); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
