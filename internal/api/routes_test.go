package api

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/testlog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// callers are the kinds of caller every route is tried with, by the name
// the golden file's columns have.
var callers = []string{"none", "wrong", "expired", "revoked", "visitor", "acme", "beta", "admin"}

// world is a store with two providers, acme and beta, and a token for
// each kind of caller.
type world struct {
	st      *store.Store
	secrets map[string]string // by caller; "" for none
	n       int               // names made so far, for fresh ones
}

func newWorld(t *testing.T, dsn string) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{st: openStore(t, dsn), secrets: map[string]string{"none": "", "wrong": "aim_" + strings.Repeat("x", 43)}}
	for _, p := range []string{"acme", "beta"} {
		if err := w.st.PutProvider(ctx, &store.Provider{Name: p, DisplayName: strings.ToUpper(p)}); err != nil {
			t.Fatal(err)
		}
	}
	for caller, tok := range map[string]store.Token{
		"admin":   {Name: "admin", Role: store.RoleAdmin},
		"acme":    {Name: "acme laptop", Role: store.RoleProvider, Provider: "acme"},
		"beta":    {Name: "beta ci", Role: store.RoleProvider, Provider: "beta"},
		"visitor": {Name: "vera", Role: store.RoleVisitor, Email: "visitor@example.com"},
		"expired": {Name: "old", Role: store.RoleAdmin, ExpiresAt: time.Now().Add(-time.Hour)},
		"revoked": {Name: "leaked", Role: store.RoleAdmin},
	} {
		sec, made, err := w.st.CreateToken(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if caller == "revoked" {
			if err := w.st.RevokeToken(ctx, made.ID); err != nil {
				t.Fatal(err)
			}
		}
		w.secrets[caller] = sec
	}
	return w
}

// fresh returns a name no other call of the test used.
func (w *world) fresh(prefix string) string {
	w.n++
	return fmt.Sprintf("%s-%d", prefix, w.n)
}

// fixtures are the solutions every call starts from.
func fixtures(t *testing.T) *fakeCtl {
	const web = "components:\n  - name: web\n    image: aim-test/server:1\n"
	return newFakeCtl(
		sol(t, "acme", "name: acme-public\n"+web+"    env: {API_KEY: sk-acme}\n"),
		sol(t, "acme", "name: acme-private\nvisibility: private\naccess: {emails: [visitor@example.com]}\n"+web),
		sol(t, "beta", "name: beta-public\n"+web+"    env: {API_KEY: sk-beta}\n"),
		sol(t, "beta", "name: beta-private\nvisibility: private\naccess: {emails: [someone@example.com]}\n"+web),
		sol(t, "beta", "name: beta-unlisted\nvisibility: unlisted\n"+web),
		sol(t, "", "name: platform\n"+web),
	)
}

func newAPI(t *testing.T, ctl Controller, st Store) *API {
	return New(Config{TempDir: t.TempDir(), Logger: testlog.Logger(t, slog.LevelDebug)}, ctl, st)
}

// call sends one request to a and returns the answer.
func call(t *testing.T, a *API, method, path, secret string, body io.Reader, contentType string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, body)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

// deployBody is a deploy's multipart body for a one-component solution.
func deployBody(t *testing.T, name string) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField(FieldManifest, "name: "+name+"\ncomponents:\n  - name: web\n    image: aim-test/server:1\n"); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

// routeCase is one row of the table: a call, tried as every caller.
type routeCase struct {
	method, path string
	// prepare, when set, makes what the call needs fresh for each caller
	// and returns the path to call instead of path.
	prepare func(t *testing.T, w *world) string
	// body, when set, is the request body and its content type.
	body func(t *testing.T, path string) (io.Reader, string)
}

func routeCases() []routeCase {
	deploy := func(t *testing.T, path string) (io.Reader, string) { return deployBody(t, filepath.Base(path)) }
	secret := func(*testing.T, string) (io.Reader, string) {
		return strings.NewReader("sk-new"), "application/octet-stream"
	}
	jsonBody := func(s string) func(*testing.T, string) (io.Reader, string) {
		return func(*testing.T, string) (io.Reader, string) { return strings.NewReader(s), "application/json" }
	}
	tarBody := func(*testing.T, string) (io.Reader, string) {
		return strings.NewReader("a tar stream"), "application/x-tar"
	}
	return []routeCase{
		{method: "GET", path: "/api/v1/solutions"},
		{method: "GET", path: "/api/v1/solutions/acme-public"},
		{method: "GET", path: "/api/v1/solutions/acme-private"},
		{method: "GET", path: "/api/v1/solutions/beta-private"},
		{method: "GET", path: "/api/v1/solutions/beta-unlisted"},
		{method: "GET", path: "/api/v1/solutions/nope"},
		{method: "PUT", path: "/api/v1/solutions/fresh", body: deploy},
		{method: "PUT", path: "/api/v1/solutions/acme-public", body: deploy},
		{method: "PUT", path: "/api/v1/solutions/beta-private", body: deploy},
		{method: "PUT", path: "/api/v1/solutions/platform", body: deploy},
		{method: "DELETE", path: "/api/v1/solutions/acme-public"},
		{method: "DELETE", path: "/api/v1/solutions/beta-private"},
		{method: "DELETE", path: "/api/v1/solutions/platform"},
		{method: "GET", path: "/api/v1/solutions/acme-public/logs"},
		{method: "GET", path: "/api/v1/solutions/beta-private/logs"},
		{method: "POST", path: "/api/v1/solutions/acme-public/wake"},
		{method: "POST", path: "/api/v1/solutions/beta-private/wake"},
		{method: "POST", path: "/api/v1/solutions/acme-public/sleep"},
		{method: "POST", path: "/api/v1/solutions/beta-private/sleep"},
		{method: "GET", path: "/api/v1/providers"},
		{method: "GET", path: "/api/v1/providers/acme"},
		{method: "PUT", path: "/api/v1/providers/{new}", body: jsonBody(`{"displayName": "New"}`),
			prepare: func(_ *testing.T, w *world) string { return "/api/v1/providers/" + w.fresh("new") }},
		{method: "DELETE", path: "/api/v1/providers/{unused}", prepare: func(t *testing.T, w *world) string {
			name := w.fresh("unused")
			if err := w.st.PutProvider(context.Background(), &store.Provider{Name: name}); err != nil {
				t.Fatal(err)
			}
			return "/api/v1/providers/" + name
		}},
		{method: "DELETE", path: "/api/v1/providers/acme"},
		{method: "GET", path: "/api/v1/tokens"},
		{method: "POST", path: "/api/v1/tokens", body: jsonBody(`{"name": "ci", "provider": "acme", "expires": "1h"}`)},
		{method: "DELETE", path: "/api/v1/tokens/{acme's}", prepare: func(t *testing.T, w *world) string {
			_, tok, err := w.st.CreateToken(context.Background(), store.Token{Name: "spare", Role: store.RoleProvider, Provider: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			return "/api/v1/tokens/" + tok.ID
		}},
		{method: "GET", path: "/api/v1/me"},
		{method: "GET", path: "/api/v1/solutions/acme-public/history"},
		{method: "GET", path: "/api/v1/solutions/beta-private/history"},
		{method: "POST", path: "/api/v1/solutions/acme-public/rollback"},
		{method: "POST", path: "/api/v1/solutions/beta-private/rollback"},
		{method: "GET", path: "/api/v1/solutions/acme-public/usage"},
		{method: "GET", path: "/api/v1/solutions/beta-private/usage"},
		{method: "POST", path: "/api/v1/solutions/acme-public/inquiries",
			body: jsonBody(`{"name": "Ann", "email": "ann@example.com", "message": "Can we try it on our data?"}`)},
		{method: "POST", path: "/api/v1/solutions/acme-private/inquiries",
			body: jsonBody(`{"name": "Ann", "email": "ann@example.com", "message": "Can we try it on our data?"}`)},
		{method: "GET", path: "/api/v1/inquiries"},
		{method: "PUT", path: "/api/v1/providers/acme/webhook", body: jsonBody(`{"webhook": "https://hooks.example.com/aim"}`)},
		{method: "GET", path: "/api/v1/solutions/acme-public/secrets"},
		{method: "GET", path: "/api/v1/solutions/beta-private/secrets"},
		{method: "GET", path: "/api/v1/solutions/platform/secrets"},
		{method: "PUT", path: "/api/v1/solutions/acme-public/secrets/API_KEY", body: secret},
		{method: "PUT", path: "/api/v1/solutions/beta-private/secrets/API_KEY", body: secret},
		{method: "PUT", path: "/api/v1/solutions/fresh/secrets/API_KEY", body: secret},
		// Nothing is set in a fresh fixture: 404 is let through.
		{method: "DELETE", path: "/api/v1/solutions/acme-public/secrets/NOT_SET"},
		{method: "DELETE", path: "/api/v1/solutions/beta-private/secrets/NOT_SET"},
		{method: "GET", path: "/api/v1/registries"},
		{method: "PUT", path: "/api/v1/registries/ghcr.io", body: jsonBody(`{"username": "bot", "password": "pw"}`)},
		// Nothing is logged in in a fresh fixture: 404 is let through.
		{method: "DELETE", path: "/api/v1/registries/127.0.0.1:5000"},
		{method: "GET", path: "/api/v1/solutions/acme-public/volumes"},
		{method: "GET", path: "/api/v1/solutions/beta-private/volumes"},
		{method: "GET", path: "/api/v1/solutions/acme-gone/volumes"},
		{method: "GET", path: "/api/v1/solutions/acme-public/volumes/data"},
		{method: "GET", path: "/api/v1/solutions/acme-gone/volumes/data"},
		{method: "GET", path: "/api/v1/solutions/acme-public/volumes/nope"},
		{method: "PUT", path: "/api/v1/solutions/acme-public/volumes/data", body: tarBody},
		{method: "PUT", path: "/api/v1/solutions/beta-private/volumes/data", body: tarBody},
		{method: "DELETE", path: "/api/v1/solutions/acme-gone?deleteData=true"},
	}
}

// TestRoutes is every route of the API against every kind of caller:
// the status of each call is in testdata/routes.golden (go test -update
// rewrites it), on a real store of each backend and a fake controller.
// TestProviderIsolation asserts the rows that matter most outright.
func TestRoutes(t *testing.T) {
	cases := routeCases()
	t.Run("every route is in the table", func(t *testing.T) {
		covered := map[string]bool{}
		for _, c := range cases {
			covered[c.method+" "+pattern(c.path)] = true
		}
		for _, rt := range newAPI(t, fixtures(t), nil).routes {
			if !covered[rt.pattern] {
				t.Errorf("route %s has no row in the table", rt.pattern)
			}
		}
	})
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.dsn(t))
			got := renderRoutes(t, w, cases)
			golden(t, filepath.Join("testdata", "routes.golden"), got, b.name == backends[0].name)
		})
	}
}

// pattern turns a row's path into the route pattern it calls.
func pattern(path string) string {
	path, _, _ = strings.Cut(path, "?")
	parts := strings.Split(path, "/")
	if len(parts) > 6 && parts[5] == "volumes" {
		parts[6] = "{volume}"
	}
	if len(parts) > 4 {
		switch parts[3] {
		case "solutions", "providers":
			parts[4] = "{name}"
		case "tokens":
			parts[4] = "{id}"
		case "registries":
			parts[4] = "{host}"
		}
	}
	if len(parts) > 6 && parts[5] == "secrets" {
		parts[6] = "{key}"
	}
	return strings.Join(parts, "/")
}

// renderRoutes makes every call of cases as every caller, each on the
// fixtures as they are at first, and renders the statuses, what each
// caller finds in the listing, and what each sees of a provider's secret.
func renderRoutes(t *testing.T, w *world, cases []routeCase) string {
	var out strings.Builder
	out.WriteString("# The status of each API call for each kind of caller (internal/api TestRoutes; go test -update rewrites it).\n")
	out.WriteString("# acme and beta are providers; visitor is visitor@example.com; expired and revoked are admin tokens.\n\n")
	tw := tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CALL\t%s\n", strings.Join(callers, "\t"))
	for _, c := range cases {
		row := []string{c.method + " " + c.path}
		for _, who := range callers {
			path := c.path
			if c.prepare != nil {
				path = c.prepare(t, w)
			}
			var body io.Reader
			var ct string
			if c.body != nil {
				body, ct = c.body(t, path)
			}
			rec := call(t, newAPI(t, fixtures(t), w.st), c.method, path, w.secrets[who], body, ct)
			row = append(row, fmt.Sprint(rec.Code))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()

	out.WriteString("\n# What GET /api/v1/solutions lists, and the API_KEY of acme-public each caller reads.\n\n")
	tw = tabwriter.NewWriter(&out, 0, 4, 2, ' ', 0)
	for _, who := range append([]string{"none"}, callers[4:]...) {
		a := newAPI(t, fixtures(t), w.st)
		var l struct{ Solutions []solution.Info }
		decode(t, call(t, a, "GET", "/api/v1/solutions", w.secrets[who], nil, ""), &l)
		var names []string
		for _, s := range l.Solutions {
			names = append(names, s.Name)
		}
		var info solution.Info
		decode(t, call(t, a, "GET", "/api/v1/solutions/acme-public", w.secrets[who], nil, ""), &info)
		fmt.Fprintf(tw, "%s\t%s\tAPI_KEY=%s\n", who, strings.Join(names, " "), info.Manifest.Components[0].Env["API_KEY"].Value)
	}
	tw.Flush()
	return out.String()
}

// errorOf is the message of an error answer.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var eb ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	return eb.Error
}

func decode(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
}

// golden compares got with the file at path, or rewrites it under
// -update when write is set.
func golden(t *testing.T, path, got string, write bool) {
	t.Helper()
	if *update && write {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

// TestProviderIsolation asserts outright what the golden file shows for
// one provider against another's solutions: acme can neither change nor
// read anything of beta's beyond what a visitor sees, and does not learn
// that beta's private solution exists.
func TestProviderIsolation(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	acme := w.secrets["acme"]
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"PUT", "/api/v1/solutions/beta-public", http.StatusForbidden},
		{"PUT", "/api/v1/solutions/beta-private", http.StatusForbidden},
		{"DELETE", "/api/v1/solutions/beta-public", http.StatusForbidden},
		{"DELETE", "/api/v1/solutions/beta-private", http.StatusNotFound},
		{"POST", "/api/v1/solutions/beta-public/wake", http.StatusForbidden},
		{"POST", "/api/v1/solutions/beta-private/wake", http.StatusNotFound},
		{"POST", "/api/v1/solutions/beta-public/sleep", http.StatusForbidden},
		{"GET", "/api/v1/solutions/beta-public/logs", http.StatusForbidden},
		{"GET", "/api/v1/solutions/beta-private/logs", http.StatusNotFound},
		{"GET", "/api/v1/solutions/beta-private", http.StatusNotFound},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			ctl := fixtures(t)
			var body io.Reader
			var ct string
			if c.method == "PUT" {
				body, ct = deployBody(t, filepath.Base(c.path))
			}
			rec := call(t, newAPI(t, ctl, w.st), c.method, c.path, acme, body, ct)
			if rec.Code != c.want {
				t.Errorf("status %d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			if len(ctl.calls) != 0 {
				t.Errorf("the controller was asked to %q", ctl.calls)
			}
			if msg := strings.ReplaceAll(errorOf(t, rec), strings.Split(c.path, "/")[4], ""); strings.Contains(msg, "beta") || strings.Contains(msg, "BETA") {
				t.Errorf("the refusal names the owner: %s", rec.Body)
			}
			if c.want == http.StatusNotFound {
				nope := call(t, newAPI(t, ctl, w.st), c.method, strings.Replace(c.path, "beta-private", "nope", 1), acme, nil, "")
				if nope.Code != rec.Code || strings.ReplaceAll(nope.Body.String(), "nope", "beta-private") != rec.Body.String() {
					t.Errorf("a private solution is told apart from a missing one: %d %s vs %d %s", rec.Code, rec.Body, nope.Code, nope.Body)
				}
			}
		})
	}
	t.Run("listing and env", func(t *testing.T) {
		a := newAPI(t, fixtures(t), w.st)
		var l struct{ Solutions []solution.Info }
		decode(t, call(t, a, "GET", "/api/v1/solutions", acme, nil, ""), &l)
		for _, s := range l.Solutions {
			if s.Name == "beta-private" || s.Name == "beta-unlisted" {
				t.Errorf("acme's listing has %s", s.Name)
			}
			if s.Name == "beta-public" && (s.Manifest.Components[0].Env["API_KEY"].Value != Hidden || s.Owner != "") {
				t.Errorf("acme's listing shows beta-public's env %v and owner %q", s.Manifest.Components[0].Env, s.Owner)
			}
		}
		var info solution.Info
		decode(t, call(t, a, "GET", "/api/v1/solutions/beta-public", acme, nil, ""), &info)
		if env := info.Manifest.Components[0].Env; env["API_KEY"].Value != Hidden {
			t.Errorf("acme reads beta-public's env %v", env)
		}
	})
}

// TestRefusals pins what the refusals say and the challenge they carry.
func TestRefusals(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	cases := []struct {
		name, who, method, path string
		status                  int
		says, challenge         string
		// not is what the message must not contain.
		not []string
	}{
		{name: "unknown token", who: "wrong", method: "GET", path: "/api/v1/solutions", status: 401,
			says: "the API token is unknown to this aim", challenge: invalidToken, not: []string{strings.Repeat("x", 43)}},
		{name: "expired token", who: "expired", method: "GET", path: "/api/v1/me", status: 401,
			says: "the API token has expired", challenge: invalidToken},
		{name: "revoked token", who: "revoked", method: "DELETE", path: "/api/v1/solutions/platform", status: 401,
			says: "the API token was revoked", challenge: invalidToken},
		{name: "anonymous remove", who: "none", method: "DELETE", path: "/api/v1/solutions/acme-public", status: 401,
			says: "removing solution acme-public needs the token of the provider it belongs to, or an admin token; the request carried none", challenge: `Bearer realm="aim"`},
		{name: "anonymous deploy", who: "none", method: "PUT", path: "/api/v1/solutions/fresh", status: 401,
			says: "deploying solution fresh needs a provider or an admin token", challenge: `Bearer realm="aim"`},
		{name: "visitor deploy", who: "visitor", method: "PUT", path: "/api/v1/solutions/fresh", status: 403,
			says: `deploying solution fresh needs a provider or an admin token; yours is a visitor token for visitor@example.com ("vera")`},
		{name: "provider lists providers", who: "acme", method: "GET", path: "/api/v1/providers", status: 403,
			says: `listing providers needs an admin token; yours is a provider token for acme ("acme laptop")`},
		{name: "another provider's deploy", who: "beta", method: "PUT", path: "/api/v1/solutions/acme-public", status: 403,
			says: "solution acme-public belongs to another provider", not: []string{"acme-public belongs to acme", "ACME", "sk-acme"}},
		{name: "another provider's remove", who: "beta", method: "DELETE", path: "/api/v1/solutions/acme-public", status: 403,
			says: `removing solution acme-public needs the token of the provider it belongs to, or an admin token; yours is a provider token for beta ("beta ci")`},
		{name: "not Bearer", who: "basic", method: "GET", path: "/api/v1/solutions", status: 401,
			says: "the Authorization header is not 'Bearer <token>'", challenge: invalidToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			var ct string
			if c.method == "PUT" {
				body, ct = deployBody(t, filepath.Base(c.path))
			}
			req := httptest.NewRequest(c.method, c.path, body)
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			switch sec := w.secrets[c.who]; {
			case c.who == "basic":
				req.Header.Set("Authorization", "Basic YWRtaW46YWRtaW4=")
			case sec != "":
				req.Header.Set("Authorization", "Bearer "+sec)
			}
			rec := httptest.NewRecorder()
			newAPI(t, fixtures(t), w.st).ServeHTTP(rec, req)
			var eb ErrorBody
			_ = json.Unmarshal(rec.Body.Bytes(), &eb)
			if rec.Code != c.status || !strings.Contains(eb.Error, c.says) {
				t.Errorf("%d %q, want %d saying %q", rec.Code, eb.Error, c.status, c.says)
			}
			if c.challenge != "" && rec.Header().Get("WWW-Authenticate") != c.challenge {
				t.Errorf("WWW-Authenticate: %q, want %q", rec.Header().Get("WWW-Authenticate"), c.challenge)
			}
			for _, n := range append(c.not, w.secrets[c.who]) {
				if n != "" && strings.Contains(rec.Body.String(), n) {
					t.Errorf("the answer says %q: %s", n, rec.Body)
				}
			}
		})
	}
}

// TestView pins what each caller sees of a solution: everything for those
// who manage it, its env keys without values, no access list and no owner
// for the others.
func TestView(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	ctl := fixtures(t)
	failed := sol(t, "acme", "name: broken\ncomponents:\n  - name: web\n    image: x\n")
	failed.State, failed.Reason = solution.Failed, "component web exited while starting with code 1; its last output:\n  password=hunter2"
	ctl.sols["broken"] = failed
	a := newAPI(t, ctl, w.st)
	cases := []struct {
		who, name   string
		env, owner  string
		access      int
		reasonHides bool
	}{
		{who: "acme", name: "acme-public", env: "sk-acme", owner: "acme"},
		{who: "admin", name: "acme-public", env: "sk-acme", owner: "acme"},
		{who: "beta", name: "acme-public", env: Hidden},
		{who: "none", name: "acme-public", env: Hidden},
		{who: "acme", name: "acme-private", owner: "acme", access: 1},
		{who: "visitor", name: "acme-private"},
		{who: "acme", name: "broken", owner: "acme"},
		{who: "visitor", name: "broken", reasonHides: true},
	}
	for _, c := range cases {
		t.Run(c.who+" "+c.name, func(t *testing.T) {
			var info solution.Info
			decode(t, call(t, a, "GET", "/api/v1/solutions/"+c.name, w.secrets[c.who], nil, ""), &info)
			m := info.Manifest
			if got := m.Components[0].Env["API_KEY"].Value; got != c.env {
				t.Errorf("API_KEY = %q, want %q", got, c.env)
			}
			if info.Owner != c.owner || len(m.Access.Emails) != c.access {
				t.Errorf("owner %q and access %v, want %q and %d entries", info.Owner, m.Access, c.owner, c.access)
			}
			if hidden := !strings.Contains(info.Reason, "hunter2"); c.name == "broken" && hidden != c.reasonHides {
				t.Errorf("reason %q", info.Reason)
			}
			if info.Visibility == "" {
				t.Error("no visibility")
			}
		})
	}
	// The fixtures themselves are untouched by what others were shown.
	if env := ctl.sols["acme-public"].Manifest.Components[0].Env; env["API_KEY"].Value != "sk-acme" {
		t.Errorf("redacting changed the controller's record: %v", env)
	}
}

// TestDeployOwner pins whom a deploy's solution belongs to.
func TestDeployOwner(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	cases := []struct {
		name, who, path string
		status          int
		// owner is what the controller was asked to deploy as, and says
		// what the refusal says otherwise.
		owner, says string
	}{
		{name: "a provider claims a new name", who: "acme", path: "/api/v1/solutions/fresh", status: 200, owner: "acme"},
		{name: "an admin's new name is the admins'", who: "admin", path: "/api/v1/solutions/fresh", status: 200, owner: ""},
		{name: "an admin deploys for a provider", who: "admin", path: "/api/v1/solutions/fresh?owner=beta", status: 200, owner: "beta"},
		{name: "an admin updates a provider's", who: "admin", path: "/api/v1/solutions/acme-public", status: 200, owner: "acme"},
		{name: "a provider updates its own", who: "acme", path: "/api/v1/solutions/acme-public?owner=acme", status: 200, owner: "acme"},
		{name: "for a provider that does not exist", who: "admin", path: "/api/v1/solutions/fresh?owner=nope", status: 422,
			says: `owner: provider "nope" does not exist`},
		{name: "a provider for another", who: "beta", path: "/api/v1/solutions/fresh?owner=acme", status: 403,
			says: `owner: "acme": a provider deploys for itself only`},
		{name: "an admin changing the owner", who: "admin", path: "/api/v1/solutions/acme-public?owner=beta", status: 409,
			says: "owner: solution acme-public belongs to provider acme, and a deploy does not change whom a solution belongs to"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := fixtures(t)
			name := strings.TrimPrefix(strings.Split(c.path, "?")[0], "/api/v1/solutions/")
			body, ct := deployBody(t, name)
			rec := call(t, newAPI(t, ctl, w.st), "PUT", c.path, w.secrets[c.who], body, ct)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			if c.status != 200 {
				if msg := errorOf(t, rec); !strings.Contains(msg, c.says) {
					t.Errorf("%q does not say %q", msg, c.says)
				}
				if len(ctl.calls) != 0 {
					t.Errorf("the controller was asked to %q", ctl.calls)
				}
				return
			}
			if ctl.deployed.Owner != c.owner {
				t.Errorf("deployed for %q, want %q", ctl.deployed.Owner, c.owner)
			}
			lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
			var last Event
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Result == nil || last.Result.Owner != c.owner {
				t.Errorf("the deploy ended with %s", lines[len(lines)-1])
			}
		})
	}
	t.Run("a claim that raced another provider's", func(t *testing.T) {
		// Between the API's decision and the deploy, acme claimed the
		// name: the controller refuses beta, and the stream says so.
		ctl := fixtures(t)
		racing := &racingCtl{fakeCtl: ctl, claim: sol(t, "acme", "name: fresh\ncomponents:\n  - name: web\n    image: x\n")}
		body, ct := deployBody(t, "fresh")
		rec := call(t, newAPI(t, racing, w.st), "PUT", "/api/v1/solutions/fresh", w.secrets["beta"], body, ct)
		if !strings.Contains(rec.Body.String(), "solution fresh belongs to another provider") {
			t.Errorf("%d %s", rec.Code, rec.Body)
		}
	})
}

// racingCtl is a controller on which another provider claims a name just
// after the API looked it up.
type racingCtl struct {
	*fakeCtl
	claim *solution.Info
}

func (r *racingCtl) Deploy(ctx context.Context, req solution.DeployRequest, p solution.Progress) (*solution.Info, error) {
	r.mu.Lock()
	r.sols[r.claim.Name] = r.claim
	r.mu.Unlock()
	return r.fakeCtl.Deploy(ctx, req, p)
}

func TestMe(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	a := newAPI(t, fixtures(t), w.st)
	for who, want := range map[string]Me{
		"none":    {},
		"admin":   {Role: "admin", TokenName: "admin"},
		"acme":    {Role: "provider", Provider: "acme", TokenName: "acme laptop"},
		"visitor": {Role: "visitor", Email: "visitor@example.com", TokenName: "vera"},
	} {
		var me Me
		decode(t, call(t, a, "GET", "/api/v1/me", w.secrets[who], nil, ""), &me)
		if (me.TokenID != "") != (who != "none") {
			t.Errorf("%s: token ID %q", who, me.TokenID)
		}
		me.TokenID = ""
		if me.Role != want.Role || me.Provider != want.Provider || me.Email != want.Email || me.TokenName != want.TokenName {
			t.Errorf("%s: %+v, want %+v", who, me, want)
		}
	}
}

func TestCallsThatChange(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	ctl := fixtures(t)
	a := newAPI(t, ctl, w.st)
	admin := w.secrets["admin"]
	rec := call(t, a, "DELETE", "/api/v1/providers/acme", admin, nil, "")
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "provider acme still owns acme-private, acme-public: remove them first") {
		t.Errorf("deleting a provider that owns solutions: %d %s", rec.Code, rec.Body)
	}
	if slices.Contains(ctl.calls, "remove acme-public") {
		t.Error("deleting a provider removed its solutions")
	}
	rec = call(t, a, "PUT", "/api/v1/providers/Bad_Name", admin, strings.NewReader(`{}`), "application/json")
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "provider name") {
		t.Errorf("a bad provider name: %d %s", rec.Code, rec.Body)
	}
	rec = call(t, a, "PUT", "/api/v1/providers/gamma", admin, strings.NewReader(`{"colour": "red"}`), "application/json")
	if rec.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, rec), `unknown field "colour"`) {
		t.Errorf("an unknown field: %d %s", rec.Code, rec.Body)
	}
	rec = call(t, a, "PUT", "/api/v1/providers/gamma", admin, strings.NewReader(`{"displayName": "Gamma", "email": "ops@gamma.example", "webhook": "https://gamma.example/hook"}`), "application/json")
	var p ProviderInfo
	decode(t, rec, &p)
	if p.Name != "gamma" || p.DisplayName != "Gamma" || p.Email != "ops@gamma.example" || p.CreatedAt.IsZero() {
		t.Errorf("saved %+v", p)
	}
	if rec := call(t, a, "DELETE", "/api/v1/providers/gamma", admin, nil, ""); rec.Code != http.StatusNoContent {
		t.Errorf("deleting gamma: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, a, "GET", "/api/v1/providers/gamma", admin, nil, ""); rec.Code != http.StatusNotFound {
		t.Errorf("gamma after its deletion: %d %s", rec.Code, rec.Body)
	}
}
