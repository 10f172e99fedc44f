package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/test/oidcop"
)

// The people of the sign-in tests: ann is on the private solution's
// access list, bob is not.
var (
	annUser = oidcop.User{Username: "ann", Password: "ann-password", Email: "ann@example.test", Name: "Ann Admitted"}
	bobUser = oidcop.User{Username: "bob", Password: "bob-password", Email: "bob@example.test", Name: "Bob Refused"}
)

// signInAim is aim serve with sign-in by a real OpenID provider that
// knows ann and bob.
type signInAim struct {
	*Aim
	apex string // http://localhost:PORT
	op   *oidcop.Server
}

func startSignInAim(t *testing.T) *signInAim {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	apex := "http://localhost:" + port
	op := oidcop.Start(t, oidcop.Config{
		Clients: []oidcop.Client{{ID: "aim-e2e", Secret: "aim-e2e-secret",
			RedirectURIs: []string{apex + "/auth/callback"}, PostLogoutRedirectURIs: []string{apex + "/"}}},
		Users: []oidcop.User{annUser, bobUser},
	})
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("aim-e2e-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := StartAimAt(t, addr, "--oidc-issuer", op.Issuer, "--oidc-client-id", "aim-e2e", "--oidc-client-secret-file", secret)
	return &signInAim{Aim: a, apex: apex, op: op}
}

// privateManifest is a one-component private solution open to emails.
func privateManifest(name string, emails ...string) string {
	return "name: " + name + "\nvisibility: private\naccess:\n  emails: [" + strings.Join(emails, ", ") + "]\n" +
		"components:\n  - name: web\n    image: " + TestImage + "\n"
}

// browserResult is what test/browser/signin.mjs prints.
type browserResult struct {
	URL, Title, H1, Notice, Who string
	Status                      int
	Catalog                     struct {
		Who                string
		SignIn, Tabs       int
		PhoneOverflow      int
		Solutions, Private []string
	}
	Echo struct {
		Status int
		Text   string
	}
	Headers     solutionSaw
	Navigations []struct {
		URL    string
		Status int
	}
	SignedOut struct {
		URL     string
		Catalog struct {
			Who       string
			SignIn    int
			Solutions []string
		}
	}
	AfterSignOut string
}

// solutionSaw is test/testserver's /headers echo: what a solution got.
type solutionSaw struct {
	Host    string
	Headers map[string][]string
	Cookies map[string]string
}

// aimCredentials lists aim's credentials in what a solution saw: aim's
// cookies (any whose name starts aim_, with or without a prefix), the
// token header.
func (s solutionSaw) aimCredentials() []string {
	var found []string
	for name := range s.Cookies {
		if strings.HasPrefix(strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-"), "aim_") {
			found = append(found, "cookie "+name)
		}
	}
	for name := range s.Headers {
		if strings.EqualFold(name, "X-Aim-Token") {
			found = append(found, "header "+name)
		}
	}
	return found
}

// AC1 of issue 13, in Chromium: an anonymous browser is sent to sign in;
// ann signs in from the catalog, sees the private solution, opens it and
// uses it; bob signs in, does not see it, gets 403 on its URL, and the
// sleeping solution does not wake for him.
func TestSignInBrowser(t *testing.T) {
	ensureBrowser(t)
	a := startSignInAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, privateManifest("vault", annUser.Email), nil))
	a.MustCLI("deploy", "-q", "--name", "hello", "--image", TestImage)
	putToSleep(t, a.Aim, "vault")
	vault := solutionURL(a.Aim, "vault")
	cfg := func(u oidcop.User, shots map[string]string) string {
		b, _ := json.Marshal(map[string]any{"apex": a.apex, "solution": vault, "name": "vault", "user": u.Username, "password": u.Password, "shots": shots})
		return string(b)
	}

	t.Run("anonymous is sent to sign in", func(t *testing.T) {
		shot := artifact(t, "signin-1-anonymous-login.png")
		var r browserResult
		if n := countStarts(t, a.Aim, "vault", func() {
			node(t, time.Minute, &r, "signin.mjs", "anonymous", cfg(annUser, map[string]string{"login": shot}))
		}); n != 0 {
			t.Errorf("an anonymous visit started the private solution %d times", n)
		}
		checkPNG(t, shot)
		if !strings.HasPrefix(r.URL, a.op.Issuer+"/login") {
			t.Errorf("opening %s ended at %s, want the provider's login form; navigations %+v", vault, r.URL, r.Navigations)
		}
		viaHandOff := slices.ContainsFunc(r.Navigations, func(n struct {
			URL    string
			Status int
		}) bool {
			return strings.HasPrefix(n.URL, a.apex+"/auth/solution?")
		})
		if len(r.Navigations) == 0 || r.Navigations[0].URL != vault || r.Navigations[0].Status != http.StatusFound || !viaHandOff {
			t.Errorf("the way to the login form: %+v, want the gateway's 302 to %s/auth/solution", r.Navigations, a.apex)
		}
	})

	t.Run("admitted", func(t *testing.T) {
		shots := map[string]string{"catalog": artifact(t, "signin-2-ann-catalog.png"), "phone": artifact(t, "signin-2-ann-catalog-phone.png"),
			"solution": artifact(t, "signin-3-ann-vault.png"), "signedOut": artifact(t, "signin-4-ann-signed-out.png")}
		var r browserResult
		node(t, 3*time.Minute, &r, "signin.mjs", "admitted", cfg(annUser, shots))
		for _, s := range shots {
			checkPNG(t, s)
		}
		t.Logf("catalog %+v; navigations %+v", r.Catalog, r.Navigations)
		if !strings.Contains(r.Catalog.Who, annUser.Email) || !slices.Contains(r.Catalog.Solutions, "vault") || !slices.Equal(r.Catalog.Private, []string{"vault"}) {
			t.Errorf("ann's catalog is %+v, want her name and vault listed as private", r.Catalog)
		}
		if r.Catalog.PhoneOverflow > 0 {
			t.Errorf("on a phone's 390 px the catalog is %d px too wide", r.Catalog.PhoneOverflow)
		}
		if r.URL != vault || !strings.HasPrefix(r.H1, "hello from") {
			t.Errorf("opening vault ended at %s with h1 %q", r.URL, r.H1)
		}
		if r.Echo.Status != http.StatusOK || strings.TrimSpace(r.Echo.Text) != "read 11" {
			t.Errorf("POST /echo in vault answered %d %q, want 200 \"read 11\"", r.Echo.Status, r.Echo.Text)
		}
		if found := r.Headers.aimCredentials(); len(found) > 0 {
			t.Errorf("vault received aim's credentials: %v (%+v)", found, r.Headers)
		}
		// Signing out ends vault's session too: opening it again asks
		// to sign in.
		if r.SignedOut.URL != a.apex+"/" || r.SignedOut.Catalog.SignIn != 1 || r.SignedOut.Catalog.Who != "" || slices.Contains(r.SignedOut.Catalog.Solutions, "vault") {
			t.Errorf("after signing out: %+v, want the catalog with a Sign in link and without vault", r.SignedOut)
		}
		if !strings.HasPrefix(r.AfterSignOut, a.op.Issuer+"/login") {
			t.Errorf("opening vault after signing out ended at %s, want the provider's login form", r.AfterSignOut)
		}
	})

	t.Run("refused, and the solution stays asleep", func(t *testing.T) {
		putToSleep(t, a.Aim, "vault")
		shots := map[string]string{"catalog": artifact(t, "signin-5-bob-catalog.png"), "refused": artifact(t, "signin-6-bob-refused.png")}
		var r browserResult
		if n := countStarts(t, a.Aim, "vault", func() { node(t, 2*time.Minute, &r, "signin.mjs", "refused", cfg(bobUser, shots)) }); n != 0 {
			t.Errorf("bob's refused visit started vault %d times", n)
		}
		for _, s := range shots {
			checkPNG(t, s)
		}
		if !strings.Contains(r.Catalog.Who, bobUser.Email) || slices.Contains(r.Catalog.Solutions, "vault") || !slices.Contains(r.Catalog.Solutions, "hello") {
			t.Errorf("bob's catalog is %+v, want his name, hello and not vault", r.Catalog)
		}
		if r.Catalog.Tabs == 0 || r.Catalog.Tabs > 3 {
			t.Errorf("the Sign in link took %d Tabs from the top of the page, want 1 to 3", r.Catalog.Tabs)
		}
		if r.Status != http.StatusForbidden || !strings.Contains(r.Notice, "vault is private") || !strings.Contains(r.Notice, bobUser.Email+" is not among them") {
			t.Errorf("opening vault as bob: %d at %s, notice %q; want 403 saying he is not admitted", r.Status, r.URL, r.Notice)
		}
		if st := a.MustCLI("status", "vault"); !strings.Contains(st, "State:       sleeping") || running(a.Aim, "vault") != 0 {
			t.Errorf("vault woke for a refused request:\n%s", st)
		}
	})
}

// putToSleep sleeps a solution and waits until its last start is out of
// the window countStarts looks back on (a second, at whole seconds).
func putToSleep(t *testing.T, a *Aim, name string) {
	t.Helper()
	a.MustCLI("sleep", name)
	waitState(t, a, name, "sleeping", 20*time.Second)
	time.Sleep(2 * time.Second)
}

// AC3 of issue 13: a solution that plants cookies for the parent domain
// and under aim's names, and echoes what it receives, never sees the
// platform's session or a visitor's token, and changes nobody's session
// on the apex or on another (private) solution.
func TestCookieIsolation(t *testing.T) {
	ensureBrowser(t)
	a := startSignInAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, privateManifest("vault", annUser.Email), nil))
	a.MustCLI("deploy", "-q", writeSolution(t, "name: planter\ncomponents:\n  - name: web\n    image: "+TestImage+
		"\n    env: {MODE: plant-cookies, COOKIE_DOMAIN: localhost}\n", nil))
	token := visitorToken(t, a.Aim, annUser.Email)

	t.Run("the gateway", func(t *testing.T) { checkCredentialsStripped(t, a.Aim, token) })

	t.Run("in the browser", func(t *testing.T) {
		shots := map[string]string{"planter": artifact(t, "cookies-1-planter.png"), "catalog": artifact(t, "cookies-2-catalog-after.png"),
			"vault": artifact(t, "cookies-3-vault-after.png")}
		b, _ := json.Marshal(map[string]any{"apex": a.apex, "vault": solutionURL(a.Aim, "vault"), "planter": solutionURL(a.Aim, "planter"),
			"user": annUser.Username, "password": annUser.Password, "shots": shots})
		var r cookiesResult
		node(t, 3*time.Minute, &r, "cookies.mjs", string(b))
		for _, s := range shots {
			checkPNG(t, s)
		}
		t.Logf("cookies before %+v; after %+v", r.Before, r.After)
		r.check(t, a.apex)
	})
}

// cookiesResult is what test/browser/cookies.mjs prints.
type cookiesResult struct {
	Before, After                    []browserCookie
	VaultSaw, PlanterSaw, VaultAfter solutionSaw
	ApexAfter                        struct {
		Who       string
		Solutions []string
	}
	VaultNavigations []struct {
		URL    string
		Status int
	}
}

type browserCookie struct {
	Name, Value, Domain string
}

func find(cs []browserCookie, name, domain string) (browserCookie, bool) {
	for _, c := range cs {
		if c.Name == name && c.Domain == domain {
			return c, true
		}
	}
	return browserCookie{}, false
}

func (r cookiesResult) check(t *testing.T, apex string) {
	t.Helper()
	session, ok := find(r.Before, "__Host-aim_session", "localhost")
	vaultSol, ok2 := find(r.Before, "__Host-aim_sol", "vault.localhost")
	if !ok || !ok2 {
		t.Fatalf("before the planting the browser lacks the apex's session or vault's: %+v", r.Before)
	}
	for _, c := range r.After {
		switch {
		case c.Name == "x" && c.Domain != "planter.localhost":
			t.Errorf("the planter's Domain cookie reached the browser for %q, want host-only on planter.localhost", c.Domain)
		case strings.Contains(c.Name, "aim_") && c.Value == "planted":
			t.Errorf("the planter set %s=%s for %s", c.Name, c.Value, c.Domain)
		}
	}
	if c, _ := find(r.After, "__Host-aim_session", "localhost"); c.Value != session.Value {
		t.Errorf("the apex session changed: %q, was %q", c.Value, session.Value)
	}
	if c, _ := find(r.After, "__Host-aim_sol", "vault.localhost"); c.Value != vaultSol.Value {
		t.Errorf("vault's session changed: %q, was %q", c.Value, vaultSol.Value)
	}
	if _, ok := find(r.After, "x", "planter.localhost"); !ok {
		t.Errorf("the planter's own cookie is missing (it should stay, host-only): %+v", r.After)
	}
	for name, saw := range map[string]solutionSaw{"vault": r.VaultSaw, "planter": r.PlanterSaw, "vault afterwards": r.VaultAfter} {
		if found := saw.aimCredentials(); len(found) > 0 {
			t.Errorf("%s received aim's credentials: %v", name, found)
		}
	}
	if r.PlanterSaw.Cookies["x"] != "1" {
		t.Errorf("the planter did not get its own cookie back: %+v", r.PlanterSaw.Cookies)
	}
	if _, ok := r.VaultAfter.Cookies["x"]; ok {
		t.Errorf("the planter's cookie reached vault: %+v", r.VaultAfter.Cookies)
	}
	if !strings.Contains(r.ApexAfter.Who, annUser.Email) || !slices.Contains(r.ApexAfter.Solutions, "vault") {
		t.Errorf("after the planting the apex shows %+v, want ann signed in and vault listed", r.ApexAfter)
	}
	for _, n := range r.VaultNavigations {
		if strings.HasPrefix(n.URL, apex+"/auth/") || n.Status != http.StatusOK {
			t.Errorf("reopening vault went through %+v, want its page at once with the session it had", r.VaultNavigations)
			break
		}
	}
}

// visitorToken makes a visitor's personal access token for email in the
// server's store, as an admin would.
func visitorToken(t *testing.T, a *Aim, email string) string {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(a.Data, "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sec, _, err := st.CreateToken(context.Background(), store.Token{Name: "ann's", Role: store.RoleVisitor, Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// checkCredentialsStripped sends aim's credentials to solutions and reads
// their echo: neither the public planter nor the private vault (which the
// token opens) gets them; vault keeps its own Authorization header; the
// planter's cookies come back host-only, those under aim's names dropped.
func checkCredentialsStripped(t *testing.T, a *Aim, token string) {
	t.Helper()
	do := func(solution, path string, h http.Header) (*http.Response, solutionSaw) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
		req.Host = solution + ".localhost"
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var saw solutionSaw
		b, _ := io.ReadAll(resp.Body)
		if path == "/headers" {
			if err := json.Unmarshal(b, &saw); err != nil {
				t.Fatalf("%s %s: %s %v\n%s", solution, path, resp.Status, err, b)
			}
		}
		return resp, saw
	}
	creds := http.Header{
		"X-Aim-Token":   {token},
		"Authorization": {"Bearer the-solutions-own"},
		"Cookie":        {"__Host-aim_session=s1; __Host-aim_sol=s2; aim_session=s3; __Secure-aim_x=s4; keep=1"},
	}
	for _, sol := range []string{"planter", "vault"} {
		resp, saw := do(sol, "/headers", creds.Clone())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s with ann's token: %s", sol, resp.Status)
		}
		if found := saw.aimCredentials(); len(found) > 0 || saw.Cookies["keep"] != "1" || len(saw.Cookies) != 1 {
			t.Errorf("%s received cookies %v and aim's credentials %v; want keep=1 alone", sol, saw.Cookies, found)
		}
		if got := saw.Headers["Authorization"]; !slices.Equal(got, []string{"Bearer the-solutions-own"}) {
			t.Errorf("%s got Authorization %q, want its own header untouched", sol, got)
		}
	}
	if resp, _ := do("vault", "/headers", http.Header{}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("vault without a credential: %s, want 401", resp.Status)
	}
	resp, _ := do("planter", "/", http.Header{})
	set := resp.Header.Values("Set-Cookie")
	if !slices.Equal(set, []string{"x=1; Path=/"}) {
		t.Errorf("the planter's Set-Cookie reached the client as %q, want x=1 host-only alone", set)
	}
}
