package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// now is the account pages' clock in these tests.
var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// fakeController is the controller's part the account pages use: the
// solutions of providers acme and beta, and what was done to them.
type fakeController struct {
	mu   sync.Mutex
	sols []*solution.Info
	logs map[string]string
	did  []string
}

func newFakeController() *fakeController {
	hello := info("hello", &spec.Manifest{Description: "Says hello."}, "acme")
	hello.Title, hello.Generation = "Hello & welcome", 4
	vault := info("vault", &spec.Manifest{Visibility: spec.Private, Access: spec.Access{Emails: []string{"ann@example.test"}}}, "acme")
	vault.State = solution.Sleeping
	other := info("other", &spec.Manifest{}, "beta")
	secret := info("secret", &spec.Manifest{Visibility: spec.Private}, "beta")
	broken := info("broken", nil, "acme")
	broken.State, broken.Reason = solution.Failed, "component web exited with code 3: fatal: cannot load the model"
	return &fakeController{
		sols: []*solution.Info{broken, hello, other, secret, vault},
		logs: map[string]string{
			"hello": "one\ntwo\n\x1b[32mlistening on :8080\x1b[0m\n<script>alert('logs')</script>\n\tGET / 200\nthree\nfour\nfive\n",
			"other": "beta's own line\n",
		},
	}
}

func (f *fakeController) List(context.Context) []*solution.Info { return f.sols }

func (f *fakeController) Get(_ context.Context, name string) (*solution.Info, error) {
	for _, s := range f.sols {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
}

func (f *fakeController) Logs(_ context.Context, name, _ string, opts runtime.LogOptions) (io.ReadCloser, error) {
	l, ok := f.logs[name]
	if !ok {
		return nil, fmt.Errorf("solution %s: %w", name, runtime.ErrNotFound)
	}
	if opts.Tail == 0 {
		return nil, fmt.Errorf("the page asked for all of %s's logs", name)
	}
	return io.NopCloser(strings.NewReader(l)), nil
}

func (f *fakeController) act(what string) func(context.Context, string) error {
	return func(_ context.Context, name string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.did = append(f.did, what+" "+name)
		return nil
	}
}

func (f *fakeController) Wake(ctx context.Context, name string) error {
	return f.act("wake")(ctx, name)
}
func (f *fakeController) Sleep(ctx context.Context, name string) error {
	return f.act("sleep")(ctx, name)
}
func (f *fakeController) Remove(ctx context.Context, name string) error {
	return f.act("remove")(ctx, name)
}

func (f *fakeController) done() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.did)
}

// fakeStore holds fixed usage, inquiries, providers and tokens, so that
// the rendered pages are the same on every run (the real store stamps
// with its clock and makes random IDs).
type fakeStore struct {
	AccountStore // nil: a method the fake does not define panics
	usage        map[string][]store.UsageDay
	inquiries    []store.Inquiry
	providers    []store.Provider
	tokens       []store.Token
}

func newFakeStore() *fakeStore {
	at := func(d string, hm string) time.Time {
		t, _ := time.Parse("2006-01-02 15:04", d+" "+hm)
		return t
	}
	return &fakeStore{
		usage: map[string][]store.UsageDay{
			"hello": {
				{Day: "2026-01-15", Views: 99, API: 99}, // before the 30 days
				{Day: "2026-02-09", Views: 3, Visitors: 2, API: 1},
				{Day: "2026-03-01", Views: 12, Visitors: 5, API: 40, Errors: 2, Wakes: 1},
				{Day: "2026-03-10", Views: 1, Visitors: 1},
			},
		},
		inquiries: []store.Inquiry{
			{Solution: "hello", Owner: "acme", Name: "Dana <b>Bold</b>", Organisation: "Gears & Co", Email: "dana@gears.test",
				Message: "Can it read STEP files?\nWe have 10,000 of them.", CreatedAt: at("2026-03-09", "08:30"),
				Delivery: store.DeliveryFailed, Attempts: 7, LastError: "POST https://hooks.acme.test/aim: 500 Internal Server Error"},
			{Solution: "hello", Owner: "acme", Name: "Eve", Email: "eve@example.test", Message: "Pricing?", CreatedAt: at("2026-03-08", "17:05"),
				Delivery: store.DeliveryDelivered, Attempts: 1, DeliveredAt: at("2026-03-08", "17:05")},
			{Solution: "hello", Owner: "acme", Name: "Finn", Email: "finn@example.test", Message: "Retry me", CreatedAt: at("2026-03-07", "09:00"),
				Delivery: store.DeliveryPending, Attempts: 2, LastError: "dial tcp: connection refused", NextAttempt: at("2026-03-10", "12:05")},
			{Solution: "other", Owner: "beta", Name: "Gus", Email: "gus@example.test", Message: "For beta only", CreatedAt: at("2026-03-06", "10:00"),
				Delivery: store.DeliveryNone},
		},
		providers: []store.Provider{
			{Name: "acme", DisplayName: "ACME Labs", Email: "dev@acme.test", Webhook: "https://hooks.acme.test/aim", CreatedAt: at("2026-01-01", "10:00")},
			{Name: "beta", CreatedAt: at("2026-01-02", "11:00")},
			{Name: "idle", DisplayName: "Idle Ltd", CreatedAt: at("2026-01-03", "12:00")},
		},
		tokens: []store.Token{
			{ID: "0a1b2c3d4e5f6071", Name: "admin", Role: store.RoleAdmin, CreatedAt: at("2026-01-01", "09:00"), LastUsedAt: at("2026-03-10", "11:59")},
			{ID: "1a1b2c3d4e5f6071", Name: "ci", Role: store.RoleProvider, Provider: "acme", CreatedAt: at("2026-01-05", "09:00"), ExpiresAt: at("2026-06-01", "00:00")},
			{ID: "2a1b2c3d4e5f6071", Name: "laptop", Role: store.RoleProvider, Provider: "beta", CreatedAt: at("2026-01-06", "09:00"), RevokedAt: at("2026-02-01", "08:00")},
			{ID: "3a1b2c3d4e5f6071", Name: "ann's", Role: store.RoleVisitor, Email: "ann@example.test", Groups: []string{"auditors"},
				CreatedAt: at("2026-01-07", "09:00"), ExpiresAt: at("2026-03-01", "00:00")},
		},
	}
}

func (f *fakeStore) Usage(_ context.Context, sol, since string) ([]store.UsageDay, error) {
	if since != "2026-02-09" {
		return nil, fmt.Errorf("usage since %s, want the 30 days to 2026-03-10", since)
	}
	return f.usage[sol], nil
}

func (f *fakeStore) ListInquiries(_ context.Context, q store.InquiryFilter) ([]store.Inquiry, error) {
	var out []store.Inquiry
	for _, in := range f.inquiries {
		if (q.Solution == "" || in.Solution == q.Solution) && (q.Owner == "" || in.Owner == q.Owner) {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeStore) ListProviders(context.Context) ([]store.Provider, error) { return f.providers, nil }
func (f *fakeStore) ListTokens(context.Context, string) ([]store.Token, error) {
	return f.tokens, nil
}

// The people of these tests, as signin's Viewer tells them.
var (
	acmeDev = viewer{Identity: auth.Identity{Role: auth.Provider, Provider: "acme", Email: "dev@acme.test", Name: "Dev"}, SignOut: "/auth/logout", CSRF: "csrf-acme"}
	root    = viewer{Identity: auth.Identity{Role: auth.Admin, Email: "root@example.test", Name: "Root"}, SignOut: "/auth/logout", CSRF: "csrf-root"}
	bob     = viewer{Identity: auth.Identity{Role: auth.Visitor, Email: "bob@example.test", EmailVerified: true, Name: "Bob", Groups: []string{"staff", "qa"}},
		SignOut: "/auth/logout", CSRF: "csrf-bob"}
	nobody = viewer{SignIn: "/auth/login?return=%2Fme"}
)

func accountMux(v Viewers, ctl AccountController, st AccountStore) *http.ServeMux {
	mux := http.NewServeMux()
	MountAccount(mux, AccountConfig{Controller: ctl, Store: st, Viewers: v, Pages: NewPages(nil), ApexURL: "https://aim.test", Now: func() time.Time { return now }})
	return mux
}

func get(t *testing.T, mux http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://aim.test"+path, nil))
	return rec
}

// shownSolutions lists the data-solution attributes of a page.
func shownSolutions(body string) []string {
	var out []string
	for _, part := range strings.Split(body, `data-solution="`)[1:] {
		name, _, _ := strings.Cut(part, `"`)
		out = append(out, name)
	}
	return out
}

// TestMePage renders the provider's page for each kind of viewer.
func TestMePage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		viewer   viewer
		status   int
		location string
		shown    []string
		golden   string
		has      []string
		hasNot   []string
	}{
		{name: "anonymous is sent to sign in", viewer: nobody, status: http.StatusSeeOther, location: "/auth/login?return=%2Fme"},
		{name: "anonymous without sign-in", viewer: viewer{}, status: http.StatusUnauthorized, has: []string{"no sign-in configured", "aim usage"}},
		{name: "a visitor is told what the page is for", viewer: bob, status: http.StatusOK, golden: "me-visitor.html",
			has: []string{"for the providers", "bob@example.test (verified)", "staff, qa"}, hasNot: []string{"data-solution"}},
		{name: "a provider sees its own", viewer: acmeDev, status: http.StatusOK, shown: []string{"broken", "hello", "vault"}, golden: "me-acme.html",
			has:    []string{"&lt;script&gt;alert(&#39;logs&#39;)&lt;/script&gt;", "Dana &lt;b&gt;Bold&lt;/b&gt;", "aim deploy DIR", "failed: given up after 7 attempts"},
			hasNot: []string{"<script>", "\x1b", "one\n", "Gus", "beta's own line", "99 page views"}},
		{name: "an admin sees all", viewer: root, status: http.StatusOK, shown: []string{"broken", "hello", "other", "secret", "vault"},
			has: []string{"As an admin you see every solution", "Gus", "beta&#39;s own line", `href="/admin"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, accountMux(tc.viewer, newFakeController(), newFakeStore()), "/me")
			body := rec.Body.String()
			if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
				t.Fatalf("GET /me: %d to %q, want %d to %q\n%s", rec.Code, rec.Header().Get("Location"), tc.status, tc.location, body)
			}
			if got := shownSolutions(body); !slices.Equal(got, tc.shown) {
				t.Errorf("the page shows %v, want %v", got, tc.shown)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %q", s)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(body, s) {
					t.Errorf("the page says %q", s)
				}
			}
			if tc.status == http.StatusOK {
				checkCSP(t, rec)
			}
			if tc.golden != "" {
				golden(t, tc.golden, body)
			}
		})
	}
}

// TestAdminPage: the admins' alone.
func TestAdminPage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		viewer viewer
		status int
		golden string
		has    []string
	}{
		{name: "anonymous is sent to sign in", viewer: viewer{SignIn: "/auth/login?return=%2Fadmin"}, status: http.StatusSeeOther},
		{name: "a visitor", viewer: bob, status: http.StatusForbidden, has: []string{"For admins only", "bob@example.test is signed in as a visitor"}},
		{name: "a provider", viewer: acmeDev, status: http.StatusForbidden, has: []string{"For admins only"}},
		{name: "an admin", viewer: root, status: http.StatusOK, golden: "admin.html",
			has: []string{"hello, vault", "2026-03-01 00:00 UTC (expired)", "ann@example.test (auditors)", `action="/admin/tokens/1a1b2c3d4e5f6071/revoke"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, accountMux(tc.viewer, newFakeController(), newFakeStore()), "/admin")
			body := rec.Body.String()
			if rec.Code != tc.status {
				t.Fatalf("GET /admin: %d, want %d\n%s", rec.Code, tc.status, body)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %q:\n%s", s, body)
				}
			}
			if strings.Contains(body, `action="/admin/tokens/2a1b2c3d4e5f6071/revoke"`) {
				t.Error("a revoked token has a Revoke button")
			}
			if tc.golden != "" {
				golden(t, tc.golden, body)
			}
		})
	}
}

// TestFlash: the message after an action is one of a fixed few, naming a
// name, whatever a link puts in the query.
func TestFlash(t *testing.T) {
	for q, want := range map[string]string{
		"done=wake&name=hello":                      "Solution hello is awake.",
		"done=provider-removed&name=acme":           "Provider acme was removed, with its tokens.",
		"done=wake&name=" + url.QueryEscape("a b"):  "",
		"done=pwned&name=hello":                     "",
		"done=wake&name=" + strings.Repeat("x", 65): "",
	} {
		r := httptest.NewRequest(http.MethodGet, "/me?"+q, nil)
		if got := flash(r); got != want {
			t.Errorf("flash of %q = %q, want %q", q, got, want)
		}
	}
}

// TestAccountActions posts the pages' forms: each is checked for its
// origin and CSRF token, authorised by the API's rules, and done through
// the controller or the store (a real one, for providers and tokens).
func TestAccountActions(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, p := range []string{"acme", "beta", "idle"} {
		if err := st.PutProvider(ctx, &store.Provider{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	_, tok, err := st.CreateToken(ctx, store.Token{Name: "ci", Role: store.RoleProvider, Provider: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	type post struct {
		name     string
		viewer   viewer
		path     string
		form     url.Values
		header   http.Header
		status   int
		location string
		says     string
		did      string // what the controller was asked to do
	}
	csrf := func(v viewer, more ...string) url.Values {
		f := url.Values{"csrf": {v.CSRF}}
		for i := 0; i+1 < len(more); i += 2 {
			f.Set(more[i], more[i+1])
		}
		return f
	}
	for _, tc := range []post{
		{name: "no CSRF token", viewer: acmeDev, path: "/me/solutions/vault/wake", form: url.Values{}, status: http.StatusForbidden, says: "out of date"},
		{name: "another session's token", viewer: acmeDev, path: "/me/solutions/vault/wake", form: csrf(root), status: http.StatusForbidden, says: "out of date"},
		{name: "posted from another origin", viewer: acmeDev, path: "/me/solutions/vault/wake", form: csrf(acmeDev),
			header: http.Header{"Origin": {"https://evil.aim.test"}}, status: http.StatusForbidden, says: "another site (https://evil.aim.test)"},
		{name: "posted from a solution's page", viewer: acmeDev, path: "/me/solutions/vault/wake", form: csrf(acmeDev),
			header: http.Header{"Sec-Fetch-Site": {"same-site"}}, status: http.StatusForbidden, says: "another site"},
		{name: "anonymous", viewer: nobody, path: "/me/solutions/vault/wake", form: url.Values{}, status: http.StatusUnauthorized, says: "Sign in first"},
		{name: "a provider wakes its own", viewer: acmeDev, path: "/me/solutions/vault/wake", form: csrf(acmeDev),
			header: http.Header{"Origin": {"https://aim.test"}, "Sec-Fetch-Site": {"same-origin"}},
			status: http.StatusSeeOther, location: "/me?done=wake&name=vault", did: "wake vault"},
		{name: "back to the admin page", viewer: root, path: "/me/solutions/other/sleep", form: csrf(root, "back", "/admin"),
			status: http.StatusSeeOther, location: "/admin?done=sleep&name=other", did: "sleep other"},
		{name: "back to nowhere else", viewer: root, path: "/me/solutions/other/sleep", form: csrf(root, "back", "https://evil.test/"),
			status: http.StatusSeeOther, location: "/me?done=sleep&name=other", did: "sleep other"},
		{name: "another provider's public solution", viewer: acmeDev, path: "/me/solutions/other/sleep", form: csrf(acmeDev),
			status: http.StatusForbidden, says: "belongs to another provider"},
		{name: "another provider's private solution stays unknown", viewer: acmeDev, path: "/me/solutions/secret/wake", form: csrf(acmeDev),
			status: http.StatusNotFound, says: "Solution secret: not found"},
		{name: "a visitor", viewer: bob, path: "/me/solutions/other/wake", form: csrf(bob), status: http.StatusForbidden, says: "belongs to another provider"},
		{name: "no such action", viewer: root, path: "/me/solutions/other/explode", form: csrf(root), status: http.StatusNotFound},
		{name: "remove unconfirmed", viewer: acmeDev, path: "/me/solutions/hello/remove", form: csrf(acmeDev), status: http.StatusBadRequest, says: "Tick the box"},
		{name: "remove", viewer: acmeDev, path: "/me/solutions/hello/remove", form: csrf(acmeDev, "confirm", "yes"),
			status: http.StatusSeeOther, location: "/me?done=remove&name=hello", did: "remove hello"},

		{name: "a provider adds a provider", viewer: acmeDev, path: "/admin/providers", form: csrf(acmeDev, "name", "gamma"), status: http.StatusForbidden, says: "For admins only"},
		{name: "add a provider", viewer: root, path: "/admin/providers", form: csrf(root, "name", "gamma", "displayName", "Gamma", "email", "g@gamma.test"),
			status: http.StatusSeeOther, location: "/admin?done=provider-added&name=gamma"},
		{name: "add one that exists", viewer: root, path: "/admin/providers", form: csrf(root, "name", "acme"), status: http.StatusConflict, says: "exists already"},
		{name: "add a bad name", viewer: root, path: "/admin/providers", form: csrf(root, "name", "Not A Label"), status: http.StatusUnprocessableEntity, says: "Provider name &#34;Not A Label&#34; is not a DNS label"},
		{name: "add a bad address", viewer: root, path: "/admin/providers", form: csrf(root, "name", "delta", "email", "nope"), status: http.StatusUnprocessableEntity, says: "email"},
		{name: "remove a provider that owns solutions", viewer: root, path: "/admin/providers/acme/remove", form: csrf(root, "confirm", "yes"),
			status: http.StatusConflict, says: "Provider acme still owns broken, hello, vault: remove them first."},
		{name: "remove a provider unconfirmed", viewer: root, path: "/admin/providers/idle/remove", form: csrf(root), status: http.StatusBadRequest, says: "Tick the box"},
		{name: "remove a provider", viewer: root, path: "/admin/providers/idle/remove", form: csrf(root, "confirm", "yes"),
			status: http.StatusSeeOther, location: "/admin?done=provider-removed&name=idle"},
		{name: "remove no provider", viewer: root, path: "/admin/providers/ghost/remove", form: csrf(root, "confirm", "yes"), status: http.StatusNotFound},
		{name: "a provider revokes", viewer: acmeDev, path: "/admin/tokens/" + tok.ID + "/revoke", form: csrf(acmeDev), status: http.StatusForbidden},
		{name: "revoke a token", viewer: root, path: "/admin/tokens/" + tok.ID + "/revoke", form: csrf(root),
			status: http.StatusSeeOther, location: "/admin?done=token-revoked&name=" + tok.ID},
		{name: "revoke no token", viewer: root, path: "/admin/tokens/ffff/revoke", form: csrf(root), status: http.StatusNotFound, says: "Token ffff: not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl := newFakeController()
			req := httptest.NewRequest(http.MethodPost, "https://aim.test"+tc.path, strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, vs := range tc.header {
				req.Header[k] = vs
			}
			rec := httptest.NewRecorder()
			accountMux(tc.viewer, ctl, st).ServeHTTP(rec, req)
			body := rec.Body.String()
			if rec.Code != tc.status || rec.Header().Get("Location") != tc.location {
				t.Errorf("POST %s: %d to %q, want %d to %q\n%s", tc.path, rec.Code, rec.Header().Get("Location"), tc.status, tc.location, body)
			}
			if tc.says != "" && !strings.Contains(body, tc.says) {
				t.Errorf("the answer does not say %q:\n%s", tc.says, body)
			}
			var want []string
			if tc.did != "" {
				want = []string{tc.did}
			}
			if got := ctl.done(); !slices.Equal(got, want) {
				t.Errorf("the controller was asked to %v, want %v", got, want)
			}
		})
	}
	if p, err := st.GetProvider(ctx, "gamma"); err != nil || p.DisplayName != "Gamma" || p.Email != "g@gamma.test" {
		t.Errorf("the added provider is %+v, %v", p, err)
	}
	if _, err := st.GetProvider(ctx, "idle"); err == nil {
		t.Error("the removed provider is still there")
	}
	if _, err := st.GetProvider(ctx, "acme"); err != nil {
		t.Errorf("the provider that owns solutions went: %v", err)
	}
	ts, _ := st.ListTokens(ctx, "acme")
	if len(ts) != 1 || ts[0].RevokedAt.IsZero() {
		t.Errorf("acme's token after the revocation: %+v", ts)
	}
}
