package signin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/test/oidcop"
)

// A person signs in from /auth/login and comes back to where they were
// going, with a platform session the apex knows them by.
func TestSignIn(t *testing.T) {
	e := newEnv(t, Config{SessionLifetime: 3 * time.Hour})
	if id := e.whoami(e.browser); !id.Anonymous() {
		t.Fatalf("before signing in the apex sees %+v", id)
	}
	resp, _ := e.signIn(e.browser, ann, "/somewhere?x=1")
	if got := resp.Request.URL.String(); got != e.apex+"/somewhere?x=1" {
		t.Errorf("signing in ended at %s, want the return address", got)
	}
	id := e.whoami(e.browser)
	want := auth.Identity{Role: auth.Visitor, Email: ann.Email, EmailVerified: true, Name: ann.Name, Groups: ann.Groups}
	if id.Role != want.Role || id.Email != want.Email || id.EmailVerified != want.EmailVerified || id.Name != want.Name || !slices.Equal(id.Groups, want.Groups) {
		t.Errorf("the apex sees %+v, want %+v", id, want)
	}
	se, err := e.st.GetSession(context.Background(), e.sessionSecret(e.browser))
	if err != nil {
		t.Fatal(err)
	}
	if se.Subject != "ann" || se.Solution != "" || time.Until(se.ExpiresAt) > 3*time.Hour || time.Until(se.ExpiresAt) < 3*time.Hour-time.Minute {
		t.Errorf("the session is %+v, want ann's on the apex for 3h", se)
	}
	for _, tc := range []struct{ name, want string }{
		{SessionCookie, "Max-Age=10800; HttpOnly; Secure; SameSite=Lax"},
		{loginCookie, "Max-Age=600; HttpOnly; Secure; SameSite=Lax"},
	} {
		set := e.setCookies(tc.name)
		if len(set) == 0 || !strings.Contains(set[0], "; Path=/; "+tc.want) || strings.Contains(strings.ToLower(set[0]), "domain") {
			t.Errorf("%s was set as %q, want Path=/; %s and no Domain", tc.name, set, tc.want)
		}
	}
	if set := e.setCookies(loginCookie); len(set) < 2 || !strings.Contains(set[len(set)-1], "Max-Age=0") {
		t.Errorf("the callback did not clear the login cookie: %q", set)
	}

	// Signing in again (as someone else) ends the first session.
	first := e.sessionSecret(e.browser)
	e.signIn(e.browser, bob, "/")
	if id := e.whoami(e.browser); id.Email != bob.Email || id.EmailVerified {
		t.Errorf("after signing in as bob the apex sees %+v, want bob, unverified", id)
	}
	if _, err := e.st.GetSession(context.Background(), first); err == nil {
		t.Errorf("ann's session outlived signing in as bob")
	}
}

// The claims decide the role: the admin group, then a provider claim that
// names an existing provider, else a visitor.
func TestRoles(t *testing.T) {
	e := newEnv(t, Config{AdminGroup: "aim-admins", ProviderClaim: "aim_provider"})
	for _, tc := range []struct {
		name     string
		user     oidcop.User
		role     auth.Role
		provider string
	}{
		{"in the admin group, with a provider claim too", root, auth.Admin, ""},
		{"a provider's person", dev, auth.Provider, "acme"},
		{"a provider claim that names no provider", ghost, auth.Visitor, ""},
		{"no group, no claim", ann, auth.Visitor, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.newBrowser()
			e.signIn(b, tc.user, "/")
			if id := e.whoami(b); id.Role != tc.role || id.Provider != tc.provider || id.Email != tc.user.Email {
				t.Errorf("%s signed in as %+v, want role %s, provider %q", tc.user.Username, id, tc.role, tc.provider)
			}
		})
	}
	t.Run("without the flags, everyone is a visitor", func(t *testing.T) {
		plain := newEnv(t, Config{})
		for _, u := range []oidcop.User{root, dev} {
			b := plain.newBrowser()
			plain.signIn(b, u, "/")
			if id := plain.whoami(b); id.Role != auth.Visitor || id.Provider != "" {
				t.Errorf("%s signed in as %+v, want a visitor", u.Username, id)
			}
		}
	})
}

// apexReturn keeps a sign-in's return address a path on the apex.
func TestApexReturn(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/", "/"},
		{"/catalog?q=1", "/catalog?q=1"},
		{"/auth/solution?name=vault&return=%2Fx", "/auth/solution?name=vault&return=%2Fx"},
		{"", "/"},
		{"https://evil.example/", "/"},
		{"//evil.example/", "/"},
		{"/\\evil.example/", "/"},
		{"/ok\r\nSet-Cookie: x=1", "/"},
		{"javascript:alert(1)", "/"},
		{"/auth/login?return=/", "/"},
		{"/auth/callback?code=x", "/"},
		{"/auth/logout", "/"},
	} {
		if got := apexReturn(tc.in); got != tc.want {
			t.Errorf("apexReturn(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The apex knows people by __Host-aim_session alone: a cookie of another
// name (which a solution could have planted for the parent domain), or a
// per-solution session's secret, is no one.
func TestIdentifyTrustsOnlyTheHostCookie(t *testing.T) {
	e := newEnv(t, Config{})
	e.signIn(e.browser, ann, "/")
	apex := e.sessionSecret(e.browser)
	parent, _ := e.st.GetSession(context.Background(), apex)
	child, err := e.st.CreateSession(context.Background(), store.Session{Subject: "ann", Email: ann.Email, Role: store.RoleVisitor,
		Solution: "vault", Parent: parent.ID, ExpiresAt: parent.ExpiresAt})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cookie string
		want         string // the email seen; "" for anonymous
	}{
		{"the platform session", SessionCookie + "=" + apex, ann.Email},
		{"under a name without the prefix", "aim_session=" + apex, ""},
		{"under __Secure-", "__Secure-aim_session=" + apex, ""},
		{"a per-solution session", SessionCookie + "=" + child, ""},
		{"a made-up secret", SessionCookie + "=planted", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, e.apex+"/", nil)
			r.Header.Set("Cookie", tc.cookie)
			if got := e.si.Identify(r); got.Email != tc.want {
				t.Errorf("Identify = %+v, want %q", got, tc.want)
			}
		})
	}
}

// Without an issuer there is no sign-in: the pages say so, sessions left
// in the store count for nothing, and the viewer gets no sign-in link.
func TestSignInNotConfigured(t *testing.T) {
	e := newEnv(t, Config{Issuer: "-"})
	for _, path := range []string{"/auth/login?return=/", "/auth/solution?name=vault&return=/", "/auth/callback?code=x&state=y"} {
		resp, page := e.get(e.browser, e.apex+path)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Sign-in is not configured") || !strings.Contains(page, "X-Aim-Token") {
			t.Errorf("%s: %s, want 403 saying sign-in is not configured:\n%s", path, resp.Status, page)
		}
	}
	sec, err := e.st.CreateSession(context.Background(), store.Session{Subject: "ann", Role: store.RoleAdmin, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, e.apex+"/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: sec})
	if id := e.si.Identify(r); !id.Anonymous() {
		t.Errorf("with sign-in off, a stored session is %+v, want anonymous", id)
	}
	if v := e.si.Viewer(r); v.SignIn != "" || v.SignOut != "" {
		t.Errorf("with sign-in off, the viewer is %+v, want no links", v)
	}
}

// A provider that does not answer makes sign-in say so (502); the
// catalog's sign-in link stays (discovery is tried again at the next
// sign-in).
func TestProviderDown(t *testing.T) {
	e := newEnv(t, Config{Issuer: "http://127.0.0.1:1"})
	resp, page := e.get(e.browser, e.apex+"/auth/login?return=/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "Sign-in is unavailable") {
		t.Errorf("%s, want 502 saying sign-in is unavailable:\n%s", resp.Status, page)
	}
	u, _ := url.Parse(e.apex + "/")
	r := &http.Request{URL: u, Header: http.Header{}}
	if v := e.si.Viewer(r.WithContext(context.Background())); !strings.HasPrefix(v.SignIn, "/auth/login?return=") {
		t.Errorf("the viewer's sign-in link is %q", v.SignIn)
	}
}
