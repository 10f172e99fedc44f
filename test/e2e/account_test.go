package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/test/oidcop"
)

// The people of the account pages' test: pat acts for provider acme,
// root is an admin, vic a visitor.
var (
	patUser  = oidcop.User{Username: "pat", Password: "pat-password", Email: "pat@acme.test", Name: "Pat Provider", Claims: map[string]any{"aim_provider": "acme"}}
	rootUser = oidcop.User{Username: "root", Password: "root-password", Email: "root@example.test", Name: "Root Admin", Groups: []string{"aim-admins"}}
	vicUser  = oidcop.User{Username: "vic", Password: "vic-password", Email: "vic@example.test", Name: "Vic Visitor"}
)

// axeViolation is one rule axe-core found broken on a page.
type axeViolation struct {
	ID, Impact, Help string
	Nodes            []string
}

// accountResult is what test/browser/account.mjs prints.
type accountResult struct {
	Provider struct {
		Login, State, Chart, Logs, CLI, Flash, StateAfter, AdminNotice string
		Solutions                                                      []string
		Bars, Tabs, PhoneOverflow, AdminStatus                         int
		Table                                                          [][]string
		Inquiries                                                      []struct{ Text, Delivery string }
		Axe                                                            []axeViolation
	}
	Admin struct {
		Login                        string
		Providers, Solutions, Tokens []string
		PhoneOverflow                int
		Axe, AxeNotice               []axeViolation
		Added                        struct {
			Flash     string
			Providers []string
		}
		RemoveRefused struct {
			Status int
			Notice string
		}
		Revoked struct {
			Flash, RevokedCell string
			Buttons            int
		}
		Woken struct{ Flash, State string }
	}
	Visitor struct {
		Login, Page, AdminNotice string
		Solutions, AdminStatus   int
		Axe, AxeAdmin            []axeViolation
	}
}

// Issue 14: the provider's page and the admin page in Chromium, signed in
// at a real OpenID provider. A provider sees its own solutions with their
// state, use (chart and table), inquiries and last log lines, and puts
// one to sleep from the keyboard; an admin adds a provider, is told why
// a provider that owns solutions cannot go, revokes a token and wakes a
// solution; a visitor is told the page is for providers; /admin is 403
// for both of them; axe-core finds no serious or critical fault on any
// of the pages (AC2, for these two).
func TestAccountPagesBrowser(t *testing.T) {
	ensureBrowser(t)
	a := startAccountAim(t)
	a.MustCLI("provider", "add", "acme", "--display-name", "ACME Labs")
	out, errOut, err := a.CLI("token", "create", "--provider", "acme", "--name", "e2e")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, errOut)
	}
	acme := strings.TrimSpace(out)
	tokenID := tokenIDOf(t, a.Aim, "e2e")
	if o, e, err := a.CLIAs(acme, "deploy", "-q", "--name", "hello", "--image", TestImage); err != nil {
		t.Fatalf("acme's deploy: %v\n%s%s", err, o, e)
	}
	if o, e, err := a.CLIAs(acme, "deploy", "-q", "--name", "nap", "--image", TestImage); err != nil {
		t.Fatalf("acme's deploy: %v\n%s%s", err, o, e)
	}
	a.MustCLI("deploy", "-q", "--name", "house", "--image", TestImage) // the admins'
	putToSleep(t, a.Aim, "nap")

	// Some use of hello, and an inquiry about it.
	c := clientAt(t, []byte{127, 0, 0, 2})
	for _, accept := range []string{"text/html", "text/html", "application/json"} {
		visit(t, c, a.Aim, "hello", "/", accept)
	}
	if got := waitUsage(t, a.Aim, "hello", usageTotals{Views: 2, Visitors: 1, API: 1}, 25*time.Second); got.Views != 2 {
		t.Fatalf("hello's usage: %+v", got)
	}
	postInquiry(t, a.Aim, "hello", `{"name":"Dana <b>Bold</b>","organisation":"Gears & Co","email":"dana@gears.test","message":"Can it read STEP files?"}`)

	shots := map[string]string{}
	for key, file := range map[string]string{"me": "account-1-me.png", "mePhone": "account-2-me-phone.png", "meSlept": "account-3-me-slept.png",
		"admin": "account-4-admin.png", "adminPhone": "account-5-admin-phone.png", "refused": "account-6-admin-refused.png",
		"adminAfter": "account-7-admin-after.png", "visitor": "account-8-visitor.png"} {
		shots[key] = artifact(t, file)
	}
	login := func(u oidcop.User) map[string]string {
		return map[string]string{"user": u.Username, "password": u.Password}
	}
	cfg, _ := json.Marshal(map[string]any{"apex": a.apex, "issuer": a.op.Issuer, "provider": login(patUser), "admin": login(rootUser),
		"visitor": login(vicUser), "providerName": "acme", "solution": "hello", "sleeper": "nap", "token": tokenID, "shots": shots})
	var r accountResult
	node(t, 5*time.Minute, &r, "account.mjs", string(cfg))
	for _, s := range shots {
		checkPNG(t, s)
	}
	checkProviderPage(t, a, r)
	checkAdminPage(t, a, r, tokenID, acme)
	checkVisitorPage(t, a, r)
}

func checkProviderPage(t *testing.T, a *signInAim, r accountResult) {
	t.Helper()
	p := r.Provider
	t.Logf("provider: solutions %v, state %q, %d bars, table %v, %d tabs to Sleep, phone overflow %d", p.Solutions, p.State, p.Bars, p.Table, p.Tabs, p.PhoneOverflow)
	if !strings.HasPrefix(p.Login, a.op.Issuer+"/login") {
		t.Errorf("an anonymous /me went to %s, want the provider's login form", p.Login)
	}
	if !slices.Equal(p.Solutions, []string{"hello", "nap"}) {
		t.Errorf("pat's page shows %v, want acme's hello and nap only", p.Solutions)
	}
	if p.State != "ready" || p.Bars < 2 || !strings.Contains(p.Chart, "2 page views and 1 API call in all") {
		t.Errorf("hello on pat's page: state %q, %d bars, chart %q", p.State, p.Bars, p.Chart)
	}
	if len(p.Table) != 1 || !slices.Equal(p.Table[0][1:4], []string{"2", "1", "1"}) {
		t.Errorf("hello's usage table is %v, want one day of 2 views, 1 visitor, 1 API call", p.Table)
	}
	if len(p.Inquiries) != 1 || !strings.Contains(p.Inquiries[0].Text, "Dana <b>Bold</b>, Gears & Co") || p.Inquiries[0].Delivery != "none" {
		t.Errorf("hello's inquiries: %+v", p.Inquiries)
	}
	if !strings.Contains(p.Logs, "listening on :8080") {
		t.Errorf("hello's last log lines: %q", p.Logs)
	}
	if !strings.Contains(p.CLI, "aim deploy DIR") {
		t.Errorf("the page does not say deploys stay in the CLI: %q", p.CLI)
	}
	if p.PhoneOverflow > 0 {
		t.Errorf("on a phone's 390 px /me is %d px too wide", p.PhoneOverflow)
	}
	if p.Tabs < 0 || !strings.Contains(p.Flash, "Solution hello is asleep") || p.StateAfter != "sleeping" {
		t.Errorf("sleeping hello from the keyboard: %d tabs, flash %q, state after %q", p.Tabs, p.Flash, p.StateAfter)
	}
	if st := a.MustCLI("status", "hello"); !strings.Contains(st, "State:       sleeping") {
		t.Errorf("hello after the Sleep button:\n%s", st)
	}
	if p.AdminStatus != http.StatusForbidden || !strings.Contains(p.AdminNotice, "For admins only") {
		t.Errorf("/admin as pat: %d %q, want 403", p.AdminStatus, p.AdminNotice)
	}
	checkAxe(t, "/me as a provider", p.Axe)
}

func checkAdminPage(t *testing.T, a *signInAim, r accountResult, tokenID, token string) {
	t.Helper()
	ad := r.Admin
	t.Logf("admin: providers %v, solutions %v, phone overflow %d; refused %+v; revoked %+v; woken %+v",
		ad.Providers, ad.Solutions, ad.PhoneOverflow, ad.RemoveRefused, ad.Revoked, ad.Woken)
	if !slices.Equal(ad.Providers, []string{"acme"}) || !slices.Equal(ad.Solutions, []string{"hello", "house", "nap"}) {
		t.Errorf("the admin page lists providers %v and solutions %v", ad.Providers, ad.Solutions)
	}
	if ad.PhoneOverflow > 0 {
		t.Errorf("on a phone's 390 px /admin is %d px too wide", ad.PhoneOverflow)
	}
	if !strings.Contains(ad.Added.Flash, "Provider gamma was added") || !slices.Equal(ad.Added.Providers, []string{"acme", "gamma"}) {
		t.Errorf("adding gamma: %+v", ad.Added)
	}
	if out := a.MustCLI("provider", "ls"); !strings.Contains(out, "gamma") || !strings.Contains(out, "Gamma Works") {
		t.Errorf("aim provider ls after adding gamma:\n%s", out)
	}
	if ad.RemoveRefused.Status != http.StatusConflict || !strings.Contains(ad.RemoveRefused.Notice, "Provider acme still owns hello, nap: remove them first") {
		t.Errorf("removing acme: %+v, want 409 naming its solutions", ad.RemoveRefused)
	}
	if !strings.Contains(ad.Revoked.Flash, "Token "+tokenID+" was revoked") || ad.Revoked.RevokedCell == "no" || ad.Revoked.Buttons != 0 {
		t.Errorf("revoking %s: %+v", tokenID, ad.Revoked)
	}
	if o, e, err := a.CLIAs(token, "whoami"); err == nil {
		t.Errorf("the revoked token still works: %s%s", o, e)
	}
	if !strings.Contains(ad.Woken.Flash, "Solution nap is awake") || ad.Woken.State != "ready" {
		t.Errorf("waking nap: %+v", ad.Woken)
	}
	checkAxe(t, "/admin", ad.Axe)
	checkAxe(t, "the admin page's refusal", ad.AxeNotice)
}

func checkVisitorPage(t *testing.T, a *signInAim, r accountResult) {
	t.Helper()
	v := r.Visitor
	if !strings.Contains(v.Page, "for the providers") || !strings.Contains(v.Page, vicUser.Email) || v.Solutions != 0 {
		t.Errorf("vic's /me: %q with %d solutions, want the page for providers with his identity", v.Page, v.Solutions)
	}
	if v.AdminStatus != http.StatusForbidden || !strings.Contains(v.AdminNotice, vicUser.Email+" is signed in as a visitor") {
		t.Errorf("/admin as vic: %d %q", v.AdminStatus, v.AdminNotice)
	}
	checkAxe(t, "/me as a visitor", v.Axe)
	checkAxe(t, "/admin refused", v.AxeAdmin)
}

// checkAxe fails the test for a serious or critical violation; the rest
// are logged.
func checkAxe(t *testing.T, page string, vs []axeViolation) {
	t.Helper()
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("axe-core on %s: %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			t.Logf("axe-core on %s: %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		}
	}
	t.Logf("axe-core on %s: %d violations, none serious or critical unless said above", page, len(vs))
}

// startAccountAim is aim serve with sign-in by a real OpenID provider
// whose admin-group members are admins and whose aim_provider claim
// names a person's provider.
func startAccountAim(t *testing.T) *signInAim {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	apex := "http://localhost:" + port
	op := oidcop.Start(t, oidcop.Config{
		Clients: []oidcop.Client{{ID: "aim-e2e", Secret: "aim-e2e-secret",
			RedirectURIs: []string{apex + "/auth/callback"}, PostLogoutRedirectURIs: []string{apex + "/"}}},
		Users: []oidcop.User{patUser, rootUser, vicUser},
	})
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("aim-e2e-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := StartAimAt(t, addr, "--oidc-issuer", op.Issuer, "--oidc-client-id", "aim-e2e", "--oidc-client-secret-file", secret,
		"--oidc-admin-group", "aim-admins", "--oidc-provider-claim", "aim_provider")
	return &signInAim{Aim: a, apex: apex, op: op}
}

// tokenIDOf is the ID of the token named name, from aim token ls.
func tokenIDOf(t *testing.T, a *Aim, name string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/api/v1/tokens", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Tokens []struct{ ID, Name string } }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	for _, tok := range body.Tokens {
		if tok.Name == name {
			return tok.ID
		}
	}
	t.Fatalf("no token %q among %+v", name, body.Tokens)
	return ""
}

// postInquiry sends an inquiry about a solution as an anonymous visitor.
func postInquiry(t *testing.T, a *Aim, name, body string) {
	t.Helper()
	resp, err := http.Post("http://"+a.Addr+"/api/v1/solutions/"+name+"/inquiries", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("posting an inquiry about %s: %s", name, resp.Status)
	}
}
