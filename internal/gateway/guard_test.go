package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/spec"
)

// fakeGuard knows a few tokens, sessions and codes.
type fakeGuard struct {
	mu       sync.Mutex
	tokens   map[string]auth.Identity
	sessions map[string]auth.Identity // "secret|solution"
	codes    map[string]string        // code -> solution
}

func (f *fakeGuard) Token(_ context.Context, s string) (auth.Identity, error) {
	if id, ok := f.tokens[s]; ok {
		return id, nil
	}
	return auth.Identity{}, errors.New("unknown token")
}

func (f *fakeGuard) Session(_ context.Context, s, sol string) (auth.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.sessions[s+"|"+sol]; ok {
		return id, nil
	}
	return auth.Identity{}, errors.New("no such session")
}

func (f *fakeGuard) Redeem(_ context.Context, code, sol string) (string, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.codes[code] != sol {
		return "", 0, errors.New("bad code")
	}
	delete(f.codes, code)
	secret := "sess-" + code
	f.sessions[secret+"|"+sol] = auth.Identity{Role: auth.Visitor, Email: "alice@example.com"}
	return secret, time.Hour, nil
}

func (f *fakeGuard) SignInURL(sol, ret string) string {
	return "http://localhost/auth/solution?name=" + sol + "&return=" + url.QueryEscape(ret)
}

// recording is a backend that records what reached it and sets cookies.
type recording struct {
	hits    atomic.Int64
	mu      sync.Mutex
	headers []http.Header
}

func (rb *recording) serve(t *testing.T) string {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rb.hits.Add(1)
		rb.mu.Lock()
		rb.headers = append(rb.headers, r.Header.Clone())
		rb.mu.Unlock()
		w.Header().Add("Set-Cookie", "theirs=1; Domain=localhost; Path=/")
		w.Header().Add("Set-Cookie", "__Host-aim_session=planted; Path=/; Secure")
		io.WriteString(w, "hello")
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

type countingWaker struct{ n atomic.Int64 }

func (c *countingWaker) Wake(context.Context, string) error { c.n.Add(1); return errors.New("no") }

func TestPrivateSolutions(t *testing.T) {
	rb := &recording{}
	backend := rb.serve(t)
	guard := &fakeGuard{
		tokens: map[string]auth.Identity{
			"alice-token": {Role: auth.Visitor, Email: "alice@example.com"},
			"eve-token":   {Role: auth.Visitor, Email: "eve@example.com"},
		},
		sessions: map[string]auth.Identity{"eve-sess|s": {Role: auth.Visitor, Email: "eve@example.com"}},
		codes:    map[string]string{"good": "s", "other": "t"},
	}
	waker := &countingWaker{}
	g := New(Config{Domain: "localhost", Guard: guard, Waker: waker})
	access := spec.Access{Emails: []string{"alice@example.com"}}
	g.Routes.Set(RouteSpec{Name: "s", Title: "S", State: StateReady, Private: true, Owner: "acme", Access: access,
		Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{backend}}}})
	g.Routes.Set(RouteSpec{Name: "z", Title: "Z", State: StateSleeping, Private: true, Owner: "acme", Access: access,
		Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})
	g.Routes.Set(RouteSpec{Name: "p", Title: "P", State: StateReady,
		Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{backend}}}})
	addr, _, _ := fastServer(t, g)
	// A new connection each time: a connection handed to net/http stays
	// there, and the fast path's cases must start on the fast path.
	noRedirect := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true},
	}

	for _, tc := range []struct {
		name, host, path string
		header           map[string]string
		status           int
		reached          bool
		location         string // a prefix
		setCookie        string // a prefix of the one Set-Cookie the client gets
	}{
		{name: "API client without a token", host: "s", path: "/x", status: 401},
		{name: "browser without a session", host: "s", path: "/x?q=1", header: map[string]string{"Accept": "text/html"}, status: 302,
			location: "http://localhost/auth/solution?name=s&return=%2Fx%3Fq%3D1"},
		{name: "allowed visitor's token", host: "s", path: "/", header: map[string]string{"X-Aim-Token": "alice-token", "Authorization": "Bearer app's own"},
			status: 200, reached: true, setCookie: "theirs=1; Path=/"},
		{name: "signed in, not allowed (token)", host: "s", path: "/", header: map[string]string{"X-Aim-Token": "eve-token"}, status: 403},
		{name: "signed in, not allowed (session)", host: "s", path: "/", header: map[string]string{"Cookie": "__Host-aim_sol=eve-sess"}, status: 403},
		{name: "invalid token", host: "s", path: "/", header: map[string]string{"X-Aim-Token": "forged"}, status: 401},
		{name: "hand-over with a good code", host: "s", path: "/.aim/signin?code=good&return=/app%3Fa%3D1", status: 303, location: "/app?a=1",
			setCookie: "__Host-aim_sol=sess-good; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"},
		{name: "the same code again", host: "s", path: "/.aim/signin?code=good", status: 400},
		{name: "another solution's code", host: "s", path: "/.aim/signin?code=other", status: 400},
		{name: "a session from the hand-over", host: "s", path: "/", header: map[string]string{"Cookie": "a=1; __Host-aim_sol=sess-good"}, status: 200, reached: true},
		{name: "asleep and refused: no wake", host: "z", path: "/", status: 401},
		{name: "asleep, browser: no wake either", host: "z", path: "/", header: map[string]string{"Accept": "text/html"}, status: 302},
		{name: "public: aim's cookies stripped on the fast path too", host: "p", path: "/", header: map[string]string{"Cookie": "__Host-aim_session=s; app=2", "X-Aim-Token": "alice-token"},
			status: 200, reached: true, setCookie: "theirs=1; Path=/"},
		{name: "public: aim's cookie alone stripped", host: "p", path: "/", header: map[string]string{"Cookie": "app=2; aim_session=s"},
			status: 200, reached: true, setCookie: "theirs=1; Path=/"},
		{name: "public, plain request (fast path)", host: "p", path: "/", status: 200, reached: true, setCookie: "theirs=1; Path=/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := rb.hits.Load()
			req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
			req.Host = tc.host + ".localhost"
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if reached := rb.hits.Load() > before; reached != tc.reached {
				t.Errorf("reached the solution: %v, want %v", reached, tc.reached)
			}
			if !strings.HasPrefix(resp.Header.Get("Location"), tc.location) {
				t.Errorf("Location %q, want %q…", resp.Header.Get("Location"), tc.location)
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if got := resp.Header.Values("Set-Cookie"); tc.setCookie != "" && (len(got) != 1 || !strings.HasPrefix(got[0], tc.setCookie)) {
				t.Errorf("Set-Cookie %q, want one %q…", got, tc.setCookie)
			}
			if tc.reached {
				rb.mu.Lock()
				h := rb.headers[len(rb.headers)-1]
				rb.mu.Unlock()
				if h.Get("X-Aim-Token") != "" || strings.Contains(h.Get("Cookie"), "aim_") {
					t.Errorf("the solution saw aim's credentials: %v", h)
				}
				if a := tc.header["Authorization"]; a != "" && h.Get("Authorization") != a {
					t.Errorf("the solution's own Authorization %q became %q", a, h.Get("Authorization"))
				}
			}
		})
	}
	if n := waker.n.Load(); n != 0 {
		t.Errorf("refused requests woke the sleeping private solution %d times", n)
	}
}

func TestPrivateWithoutGuard(t *testing.T) {
	g := New(Config{Domain: "localhost"})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Private: true, Access: spec.Access{Groups: []string{"x"}},
		Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{"127.0.0.1:1"}}}})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://s.localhost/", nil)
	req.Header.Set(TokenHeader, "anything")
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("status %d, want 403 (fail closed)", rec.Code)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/a?b=1": "/a?b=1", "": "/", "//evil.example/": "/", "/\\evil.example": "/", "https://evil.example/": "/", "/a\r\nSet-Cookie: x": "/",
	} {
		if got := LocalPath(in); got != want {
			t.Errorf("LocalPath(%q) = %q, want %q", in, got, want)
		}
	}
}
