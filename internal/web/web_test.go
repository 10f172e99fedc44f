package web

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from what was rendered (go test -update rewrites it); got:\n%s", path, got)
	}
}

type list []*solution.Info

func (l list) List(context.Context) []*solution.Info { return l }

type viewer Viewer

func (v viewer) Viewer(*http.Request) Viewer { return Viewer(v) }

func info(name string, m *spec.Manifest, owner string) *solution.Info {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := &solution.Info{Name: name, Title: name, URL: "http://" + name + ".aim.test/", State: solution.Ready,
		Manifest: m, Owner: owner, CreatedAt: at, UpdatedAt: at}
	if m != nil {
		m.Name = name
		in.Description, in.Tags = m.Description, m.Tags
	}
	return in
}

// solutions are one of each visibility, a private one of provider acme
// open to ann and to a group, and one whose manifest was unreadable.
var solutions = list{
	info("public", &spec.Manifest{Description: "Open to all.", Tags: []string{"demo"}}, ""),
	info("unlisted", &spec.Manifest{Visibility: spec.Unlisted}, "acme"),
	info("vault", &spec.Manifest{Visibility: spec.Private, Access: spec.Access{Emails: []string{"ann@example.test"}, Groups: []string{"auditors"}}}, "acme"),
	info("broken", nil, ""),
}

// TestCatalog renders the catalog for each kind of viewer: what it lists
// (auth.Lists) and what its header offers.
func TestCatalog(t *testing.T) {
	signOut := func(id auth.Identity) viewer {
		return viewer{Identity: id, SignOut: "/auth/logout", CSRF: "csrf-token"}
	}
	for _, tc := range []struct {
		name    string
		viewer  Viewers
		shown   []string
		caURL   string
		golden  string
		without []string // what the page must not contain
	}{
		{name: "no sign-in configured", viewer: nil, shown: []string{"public"}, golden: "catalog-no-signin.html",
			without: []string{"Sign in", "Sign out"}},
		{name: "anonymous", viewer: viewer{SignIn: "/auth/login?return=%2F"}, shown: []string{"public"}, caURL: "/ca.crt", golden: "catalog-anonymous.html"},
		{name: "admitted by address", viewer: signOut(auth.Identity{Role: auth.Visitor, Email: "ann@example.test", Name: "Ann"}),
			shown: []string{"public", "vault"}, golden: "catalog-ann.html"},
		{name: "admitted by group", viewer: signOut(auth.Identity{Role: auth.Visitor, Email: "carl@example.test", Groups: []string{"auditors"}}),
			shown: []string{"public", "vault"}},
		{name: "not admitted", viewer: signOut(auth.Identity{Role: auth.Visitor, Email: "bob@example.test", Name: "Bob"}),
			shown: []string{"public"}, golden: "catalog-bob.html", without: []string{"vault", `class="badge private"`}},
		{name: "the owner", viewer: signOut(auth.Identity{Role: auth.Provider, Provider: "acme", Email: "dev@acme.test"}),
			shown: []string{"public", "unlisted", "vault"}},
		{name: "another provider", viewer: signOut(auth.Identity{Role: auth.Provider, Provider: "other", Email: "dev@other.test"}),
			shown: []string{"public"}},
		{name: "admin", viewer: signOut(auth.Identity{Role: auth.Admin, Email: "root@example.test", Name: "Root"}),
			shown: []string{"public", "unlisted", "vault", "broken"}, golden: "catalog-admin.html"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCatalog(solutions, tc.viewer, NewPages(nil))
			c.CAURL = tc.caURL
			rec := httptest.NewRecorder()
			c.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			body := rec.Body.String()
			if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("status %d, Cache-Control %q; want 200, no-store", rec.Code, rec.Header().Get("Cache-Control"))
			}
			var shown []string
			for _, s := range solutions {
				if strings.Contains(body, `data-solution="`+s.Name+`"`) {
					shown = append(shown, s.Name)
				}
			}
			if strings.Join(shown, ",") != strings.Join(tc.shown, ",") {
				t.Errorf("the catalog shows %v, want %v", shown, tc.shown)
			}
			for _, s := range tc.without {
				if strings.Contains(body, s) {
					t.Errorf("the catalog says %q:\n%s", s, body)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, body)
			}
		})
	}
}

func TestNotice(t *testing.T) {
	rec := httptest.NewRecorder()
	NewPages(nil).Notice(rec, Viewer{Identity: auth.Identity{Role: auth.Visitor, Email: "bob@example.test"}, SignOut: "/auth/logout", CSRF: "t"},
		http.StatusForbidden, Notice{Title: "Vault is private", Paragraphs: []string{"It is open to the people its provider chose, and bob@example.test is not among them."},
			Link: "/", LinkText: "Back to the catalog"})
	if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	golden(t, "notice-forbidden.html", rec.Body.String())
}

// checkCSP checks a rendered page's policy: no script, no framing, and
// styles only from the page's own <style> as rendered, by its hash.
func checkCSP(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	csp := rec.Header().Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("Content-Security-Policy %q lacks %s", csp, d)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q allows script or inline styles", csp)
	}
	body := rec.Body.String()
	_, rest, ok := strings.Cut(body, "<style>")
	if !ok {
		return
	}
	css, _, _ := strings.Cut(rest, "</style>")
	sum := sha256.Sum256([]byte(css))
	if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, "style-src 'self' "+h) {
		t.Errorf("the page's <style> hashes to %s, which Content-Security-Policy %q does not allow", h, csp)
	}
	if strings.Count(body, "<style") > 1 || strings.Contains(body, " style=") || strings.Contains(body, "<script") {
		t.Error("the page has a second <style>, a style attribute or a script, which the policy blocks")
	}
}
