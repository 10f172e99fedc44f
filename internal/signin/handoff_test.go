package signin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/store"
)

// handOff opens the gateway's sign-in URL for solution with b and returns
// the last answer (the browser stops at a solution's host) and its body.
func (e *env) handOff(b *http.Client, solution, back string) (*http.Response, string) {
	e.t.Helper()
	return e.get(b, e.guard.SignInURL(solution, back))
}

// The hand-off: a browser without a session is signed in first and comes
// back; one admitted gets a one-time code on the solution's host, which
// the guard turns into a session of that solution alone; one not admitted
// gets 403 and no code.
func TestHandOff(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()

	// Not signed in: to the provider, then back through the hand-off.
	resp, page := e.handOff(e.browser, "vault", "/page?q=1")
	if !strings.HasPrefix(resp.Request.URL.String(), e.op.Issuer) {
		t.Fatalf("an anonymous hand-off led to %s (%s), want the provider's login:\n%s", resp.Request.URL, resp.Status, page)
	}
	resp, _ = e.fillLogin(e.browser, resp, page, ann)
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "vault.localhost:"+e.port || loc.Path != gateway.SignInPath ||
		loc.Query().Get("return") != "/page?q=1" || loc.Query().Get("code") == "" {
		t.Fatalf("after signing in, the hand-off answered %s to %v; want 303 to vault's %s with a code and the return", resp.Status, loc, gateway.SignInPath)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the hand-off may be cached: Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	code := loc.Query().Get("code")
	secret, maxAge, err := e.guard.Redeem(ctx, code, "vault")
	if err != nil {
		t.Fatal(err)
	}
	parent, _ := e.st.GetSession(ctx, e.sessionSecret(e.browser))
	if d := parent.ExpiresAt.Sub(e.guard.now()) - maxAge; d < -time.Second || d > time.Second {
		t.Errorf("the solution's cookie lasts %s, want as long as the platform session (%s)", maxAge, parent.ExpiresAt)
	}
	if id, err := e.guard.Session(ctx, secret, "vault"); err != nil || id.Email != ann.Email {
		t.Errorf("the redeemed session on vault is %+v, %v; want ann", id, err)
	}
	if _, err := e.guard.Session(ctx, secret, "domain"); err == nil {
		t.Errorf("vault's session was taken on another solution")
	}
	if _, _, err := e.guard.Redeem(ctx, code, "vault"); !errors.Is(err, store.ErrCodeInvalid) {
		t.Errorf("a code redeemed twice: %v, want ErrCodeInvalid", err)
	}

	// Signed in already: straight to the code.
	resp, _ = e.handOff(e.browser, "vault", "/")
	if loc, _ := resp.Location(); resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" {
		t.Errorf("a second hand-off answered %s to %v, want a code at once", resp.Status, loc)
	}

	for _, tc := range []struct {
		name, solution string
		status         int
		says           string
		location       string // for a redirect
	}{
		{"a public solution needs no code", "open", http.StatusSeeOther, "", "http://open.localhost:" + e.port + "/x"},
		{"an unknown solution", "nosuch", http.StatusNotFound, "There is no solution called nosuch", ""},
		{"not a name", "No_Such", http.StatusBadRequest, "names no solution", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := e.handOff(e.browser, tc.solution, "/x")
			loc, _ := resp.Location()
			if resp.StatusCode != tc.status || !strings.Contains(page, tc.says) || (tc.location != "" && (loc == nil || loc.String() != tc.location)) {
				t.Errorf("%s to %v, want %d to %q saying %q:\n%s", resp.Status, loc, tc.status, tc.location, tc.says, page)
			}
		})
	}

	t.Run("not admitted", func(t *testing.T) {
		b := e.newBrowser()
		e.signIn(b, bob, "/")
		// bob@example.test is not on vault's list, and his address is
		// unverified, so the domain example.test does not admit him.
		for _, sol := range []string{"vault", "domain"} {
			resp, page := e.handOff(b, sol, "/")
			if resp.StatusCode != http.StatusForbidden || resp.Request.URL.Hostname() != "localhost" ||
				!strings.Contains(page, "is private") || !strings.Contains(page, bob.Email+" is not among them") || !strings.Contains(page, `id="aim-signout"`) {
				t.Errorf("%s: %s at %s, want 403 naming bob with a sign-out button:\n%s", sol, resp.Status, resp.Request.URL, page)
			}
		}
	})
	t.Run("admitted by a verified address's domain", func(t *testing.T) {
		b := e.newBrowser()
		e.signIn(b, ann, "/")
		if resp, _ := e.handOff(b, "domain", "/"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("ann, verified at example.test, got %s for domain", resp.Status)
		}
	})
}

// Signing out ends the platform session and the per-solution sessions
// made from it, clears the cookie and goes on to the provider's
// end_session, which comes back to the apex. A post from another origin,
// or without the form's token, is refused.
func TestLogout(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.signIn(e.browser, ann, "/")
	apex := e.sessionSecret(e.browser)
	resp, _ := e.handOff(e.browser, "vault", "/")
	loc, _ := resp.Location()
	child, _, err := e.guard.Redeem(ctx, loc.Query().Get("code"), "vault")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.guard.Session(ctx, child, "vault"); err != nil { // now cached
		t.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, e.apex+"/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: apex})
	csrf := e.si.Viewer(r).CSRF
	if csrf == "" {
		t.Fatal("a signed-in viewer has no CSRF token")
	}

	post := func(origin string, form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, e.apex+"/auth/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := e.browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body(t, resp)
	}
	for _, tc := range []struct {
		name, origin string
		form         url.Values
	}{
		{"from a solution's page", "http://evil.localhost:" + e.port, url.Values{"csrf": {csrf}}},
		{"without the token", e.apex, nil},
		{"with another session's token", e.apex, url.Values{"csrf": {csrfToken([]byte("k"), "other")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, page := post(tc.origin, tc.form)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Sign-out refused") {
				t.Errorf("%s, want 403:\n%s", resp.Status, page)
			}
			if id := e.whoami(e.browser); id.Email != ann.Email {
				t.Errorf("a refused sign-out signed ann out: %+v", id)
			}
		})
	}

	resp, page := post(e.apex, url.Values{"csrf": {csrf}})
	if resp.Request.URL.String() != e.apex+"/" || resp.StatusCode != http.StatusOK {
		t.Errorf("signing out ended at %s (%s), want the apex after the provider's end_session:\n%s", resp.Request.URL, resp.Status, page)
	}
	var endSession *url.URL
	for _, a := range e.answers {
		if a.Request.URL.Path == "/auth/logout" {
			endSession, _ = a.Location()
		}
	}
	if endSession == nil || !strings.HasPrefix(endSession.String(), e.op.Issuer) || endSession.Query().Get("client_id") != clientID ||
		endSession.Query().Get("post_logout_redirect_uri") != e.apex+"/" {
		t.Errorf("signing out went to %v, want the provider's end_session with the client and the apex", endSession)
	}
	if e.sessionSecret(e.browser) != "" || !e.whoami(e.browser).Anonymous() {
		t.Errorf("still signed in after signing out")
	}
	if _, err := e.st.GetSession(ctx, apex); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the platform session outlived signing out: %v", err)
	}
	if _, err := e.guard.Session(ctx, child, "vault"); err == nil {
		t.Errorf("vault's session outlived signing out (the guard's cache kept it)")
	}
	// Signing out again is signed out.
	if resp, _ := post(e.apex, nil); resp.Request.URL.String() != e.apex+"/" {
		t.Errorf("signing out twice ended at %s", resp.Request.URL)
	}
}
