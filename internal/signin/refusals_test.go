package signin

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/aimhub/aim/test/oidcop"
)

// authorize signs b in as u at the provider, but stops before the
// callback: it returns the callback URL the provider sent the browser to
// and the flow of b's login cookie.
func (e *env) authorize(b *http.Client, u oidcop.User) (*url.URL, flow) {
	e.t.Helper()
	stop := *b
	stop.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/auth/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, page := e.get(&stop, e.apex+"/auth/login?return=%2Fback")
	resp, page = e.fillLogin(&stop, resp, page, u)
	loc, err := resp.Location()
	if err != nil || loc.Path != "/auth/callback" {
		e.t.Fatalf("the provider answered %s, Location %v, want a redirect to the callback:\n%s", resp.Status, loc, page)
	}
	return loc, e.flowOf(b)
}

// flowOf decodes b's login cookie (without checking it).
func (e *env) flowOf(b *http.Client) flow {
	e.t.Helper()
	var f flow
	for _, c := range b.Jar.Cookies(e.apexURL()) {
		if c.Name == loginCookie {
			payload, _, _ := strings.Cut(c.Value, ".")
			raw, _ := base64.RawURLEncoding.DecodeString(payload)
			if err := json.Unmarshal(raw, &f); err != nil {
				e.t.Fatal(err)
			}
			return f
		}
	}
	e.t.Fatal("the browser has no login cookie")
	return f
}

func (e *env) apexURL() *url.URL {
	u, _ := url.Parse(e.apex + "/")
	return u
}

// setLoginCookie puts value in b's login cookie; "" removes it.
func (e *env) setLoginCookie(b *http.Client, value string) {
	c := &http.Cookie{Name: loginCookie, Value: value, Path: "/", Secure: true, HttpOnly: true}
	if value == "" {
		c.MaxAge = -1
	}
	b.Jar.SetCookies(e.apexURL(), []*http.Cookie{c})
}

// Each way a callback can be wrong is refused with 400 and signs no one
// in: the login cookie missing, forged or expired; the state, the nonce
// or the PKCE verifier not the flow's; the provider's refusal; a code
// used twice.
func TestCallbackRefusals(t *testing.T) {
	e := newEnv(t, Config{})
	key, err := e.st.Key(context.Background(), "signin")
	if err != nil {
		t.Fatal(err)
	}
	withState := func(cb *url.URL, state string) string {
		u := *cb
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, tc := range []struct {
		name string
		// tamper returns the callback URL to open and the login cookie
		// to send ("" for none), from the true ones.
		tamper func(cb *url.URL, f flow) (string, string)
		says   string
	}{
		{"no login cookie", func(cb *url.URL, f flow) (string, string) { return cb.String(), "" }, "Sign-in expired"},
		{"a cookie signed with another key", func(cb *url.URL, f flow) (string, string) {
			return cb.String(), sealFlow([]byte("not the platform's key, not at all"), f)
		}, "Sign-in expired"},
		{"a cookie changed after signing", func(cb *url.URL, f flow) (string, string) {
			sealed := sealFlow(key, f)
			f.Return = "/elsewhere"
			_, sum, _ := strings.Cut(sealed, ".")
			other, _, _ := strings.Cut(sealFlow(key, f), ".")
			return cb.String(), other + "." + sum
		}, "Sign-in expired"},
		{"an expired cookie", func(cb *url.URL, f flow) (string, string) {
			f.Expires = time.Now().Add(-time.Second).Unix()
			return cb.String(), sealFlow(key, f)
		}, "Sign-in expired"},
		{"another state", func(cb *url.URL, f flow) (string, string) { return withState(cb, f.State+"x"), sealFlow(key, f) }, "Sign-in did not match"},
		{"no state", func(cb *url.URL, f flow) (string, string) { return withState(cb, ""), sealFlow(key, f) }, "Sign-in did not match"},
		{"another nonce", func(cb *url.URL, f flow) (string, string) {
			f.Nonce = random()
			return cb.String(), sealFlow(key, f)
		}, "could not be verified"},
		{"another PKCE verifier", func(cb *url.URL, f flow) (string, string) {
			f.Verifier = oauth2.GenerateVerifier()
			return cb.String(), sealFlow(key, f)
		}, "did not take this sign-in"},
		{"the provider's refusal", func(cb *url.URL, f flow) (string, string) {
			return e.apex + "/auth/callback?" + url.Values{"state": {f.State}, "error": {"access_denied"}, "error_description": {"the user said no"}}.Encode(),
				sealFlow(key, f)
		}, "access_denied the user said no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.newBrowser()
			cb, f := e.authorize(b, ann)
			to, cookie := tc.tamper(cb, f)
			e.setLoginCookie(b, cookie)
			resp, page := e.get(b, to)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, tc.says) {
				t.Errorf("%s, want 400 saying %q:\n%s", resp.Status, tc.says, page)
			}
			if s := e.sessionSecret(b); s != "" {
				t.Errorf("a refused callback set a session cookie")
			}
			if id := e.whoami(b); !id.Anonymous() {
				t.Errorf("after a refused callback the apex sees %+v", id)
			}
		})
	}

	t.Run("a code used twice", func(t *testing.T) {
		b := e.newBrowser()
		cb, f := e.authorize(b, ann)
		sealed := sealFlow(key, f)
		if resp, page := e.get(b, cb.String()); resp.Request.URL.Path != "/back" || e.sessionSecret(b) == "" {
			t.Fatalf("the first callback ended at %s (%s):\n%s", resp.Request.URL, resp.Status, page)
		}
		thief := e.newBrowser()
		e.setLoginCookie(thief, sealed)
		resp, page := e.get(thief, cb.String())
		if resp.StatusCode != http.StatusBadRequest || e.sessionSecret(thief) != "" {
			t.Errorf("replaying the callback: %s, session %q; want 400 and none:\n%s", resp.Status, e.sessionSecret(thief), page)
		}
	})
}
