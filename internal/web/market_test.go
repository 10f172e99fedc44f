package web

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// clock is the pages' time in these tests: tokens and dates stay put.
var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// market is a catalog on a real store (SQLite) with the API's Inquirer:
// three solutions of provider acme, one of globex, and a private one.
type market struct {
	st  *store.Store
	inq *api.Inquirer
	// sols are the solutions it lists.
	sols list
}

func newMarket(t *testing.T) *market {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for _, p := range []store.Provider{{Name: "acme", DisplayName: "ACME Engineering"}, {Name: "globex"}} {
		if err := st.PutProvider(ctx, &p); err != nil {
			t.Fatal(err)
		}
	}
	m := &market{st: st, inq: &api.Inquirer{Store: st, Providers: st, Limits: inquiry.NewLimiter(3, 50, time.Hour)}}
	mk := func(name, title, desc, prov, owner string, tags []string, phases []spec.Phase, st solution.State, age int) *solution.Info {
		in := info(name, &spec.Manifest{Title: title, Description: desc, Tags: tags, Phases: phases,
			Provider: spec.Provider{Name: prov, Contact: "sales@" + strings.ToLower(prov) + ".example"}}, owner)
		in.Title, in.State, in.Provider, in.Generation = title, st, in.Manifest.Provider, int64(10+age)
		in.CreatedAt = clock.Add(-time.Duration(age) * 24 * time.Hour)
		in.UpdatedAt = in.CreatedAt.Add(time.Hour)
		return in
	}
	m.sols = list{
		mk("parts", "Part Comparer", "Finds **similar** CAD parts.\n\nUpload an STL, get the nearest parts.", "ACME", "acme",
			[]string{"cad", "geometry"}, []spec.Phase{spec.ProductDevelopment}, solution.Ready, 1),
		mk("planner", "Line Planner", "Plans assembly lines.", "ACME", "acme",
			[]string{"factory"}, []spec.Phase{spec.ProductionDevelopment, spec.ProductDevelopment}, solution.Sleeping, 2),
		mk("trends", "Market Trends", "Reads markets.", "Globex", "globex",
			[]string{"nlp"}, []spec.Phase{spec.StrategicPlanning}, solution.Sleeping, 3),
		mk("vault", "Vault", "Secret CAD work.", "ACME", "acme", []string{"cad"}, []spec.Phase{spec.ProductDevelopment}, solution.Ready, 0),
	}
	m.sols[0].OpenAPI = "http://parts.aim.test/openapi.json"
	m.sols[0].Manifest.Thumbnail = "card.png"
	m.sols[3].Manifest.Visibility, m.sols[3].Manifest.Access = spec.Private, spec.Access{Emails: []string{"ann@example.test"}}
	if err := st.PutThumbnail(ctx, "parts", "image/png", pngBytes(t)); err != nil {
		t.Fatal(err)
	}
	return m
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (m *market) catalog(v Viewers) *Catalog {
	c := NewCatalog(m.sols, v, NewPages(nil))
	c.Store, c.Inquirer, c.now = m.st, m.inq, func() time.Time { return clock }
	return c
}

var (
	anonymous = viewer{SignIn: "/auth/login?return=%2F"}
	ann       = viewer{Identity: auth.Identity{Role: auth.Visitor, Email: "ann@example.test", Name: "Ann"}, SignOut: "/auth/logout", CSRF: "ann-csrf"}
	// bob, a visitor whom no private solution here admits, is
	// account_test.go's.
)

// tokens hides the contact forms' tokens, which change with the store's
// key, from the golden files.
var tokens = regexp.MustCompile(`(name="csrf" value=")\d+\.[A-Za-z0-9_-]+"`)

func stable(body string) string { return tokens.ReplaceAllString(body, `${1}(token)"`) }

// shown lists the solutions a catalog page shows, in order.
func shown(body string) string {
	var names []string
	for _, m := range regexp.MustCompile(`<article class="card" data-solution="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	return strings.Join(names, ",")
}

// TestCatalogQueries is the catalog's search, filters, order and pages
// as a visitor uses them, by links and the form alone.
func TestCatalogQueries(t *testing.T) {
	m := newMarket(t)
	ctx := context.Background()
	if err := m.st.AddUsage(ctx, clock.Format("2006-01-02"), "trends", store.UsageCounts{Views: 40, API: 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.st.AddUsage(ctx, clock.Format("2006-01-02"), "planner", store.UsageCounts{Views: 3}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, query string
		v           viewer
		shown       string
		golden      string
		has         []string
	}{
		{name: "everything a visitor may see, newest first", query: "", v: anonymous, shown: "parts,planner,trends",
			has: []string{`<h2 id="aim-results" data-total="3">3 solutions</h2>`}},
		{name: "the private one for whom it admits", query: "", v: ann, shown: "vault,parts,planner,trends"},
		{name: "a search narrows it", query: "q=cad", v: anonymous, shown: "parts", golden: "catalog-search.html",
			has: []string{`value="cad"`, `1 solution matching “cad”`, `<a id="aim-clear" href="/">Show all solutions</a>`}},
		{name: "a phase with its title", query: "phase=product-development", v: anonymous, shown: "parts,planner",
			has: []string{`<a href="/" aria-current="true" title="Remove this filter"><span>Product development</span> <span class="count">2</span></a>`,
				`<input type="hidden" name="phase" value="product-development">`}},
		{name: "a tag and a provider", query: "tag=factory&provider=ACME", v: anonymous, shown: "planner"},
		{name: "a state", query: "state=sleeping", v: anonymous, shown: "planner,trends"},
		{name: "most used", query: "sort=used", v: anonymous, shown: "trends,planner,parts",
			has: []string{`<a href="/?sort=used" aria-current="true">Most used</a>`}},
		{name: "nothing matches", query: "q=quantum&phase=service-development", v: anonymous, shown: "", golden: "catalog-none.html",
			has: []string{`No solution matches “quantum” with these filters.`}},
		{name: "the private one is no search result for others", query: "q=secret", v: bob, shown: "",
			has: []string{"No solution matches"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, m.catalog(tc.v), "/?"+tc.query)
			body := rec.Body.String()
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if got := shown(body); got != tc.shown {
				t.Errorf("shows %q, want %q", got, tc.shown)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %s", s)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, body)
			}
		})
	}
}

// TestCatalogPages: 60 solutions are three pages, linked with the
// query kept.
func TestCatalogPages(t *testing.T) {
	var sols list
	for i := range 60 {
		sols = append(sols, info(fmt.Sprintf("s%02d", i), &spec.Manifest{Tags: []string{"ml"}}, ""))
		sols[i].CreatedAt = clock.Add(-time.Duration(i) * time.Hour)
	}
	rec := get(t, NewCatalog(sols, anonymous, NewPages(nil)), "/?tag=ml&page=2")
	body := rec.Body.String()
	if got := shown(body); !strings.HasPrefix(got, "s24,s25") || strings.Count(got, ",") != PerPage-1 {
		t.Errorf("page 2 shows %s", got)
	}
	for _, s := range []string{`<a href="/?tag=ml" rel="prev">`, `<a href="/?page=3&amp;tag=ml" rel="next">`,
		`<a href="/?page=2&amp;tag=ml" aria-current="page"><span class="sr">Page </span>2</a>`} {
		if !strings.Contains(body, s) {
			t.Errorf("the pager lacks %s", s)
		}
	}
	golden(t, "catalog-page2.html", body)
}

// TestUsageCachedAMinute: "most used" reads the store once a minute
// however many pages are served.
func TestUsageCachedAMinute(t *testing.T) {
	m := newMarket(t)
	c := m.catalog(anonymous)
	now := clock
	c.now = func() time.Time { return now }
	day := clock.Format("2006-01-02")
	if err := m.st.AddUsage(context.Background(), day, "trends", store.UsageCounts{Views: 5}, nil); err != nil {
		t.Fatal(err)
	}
	if got := shown(get(t, c, "/?sort=used").Body.String()); got != "trends,parts,planner" {
		t.Fatalf("most used: %s", got)
	}
	if err := m.st.AddUsage(context.Background(), day, "planner", store.UsageCounts{API: 50}, nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Second)
	if got := shown(get(t, c, "/?sort=used").Body.String()); got != "trends,parts,planner" {
		t.Errorf("within the minute: %s, want the order read before", got)
	}
	now = now.Add(31 * time.Second)
	if got := shown(get(t, c, "/?sort=used").Body.String()); got != "planner,trends,parts" {
		t.Errorf("after the minute: %s", got)
	}
}

// TestSolutionPage renders a solution's page: its description as safe
// HTML, its facts, its links back to the catalog, and the contact form
// with a signed-in visitor's name and address in it.
func TestSolutionPage(t *testing.T) {
	m := newMarket(t)
	for _, tc := range []struct {
		name, path string
		v          viewer
		status     int
		golden     string
		has        []string
	}{
		{name: "anonymous", path: "/s/parts", v: anonymous, status: 200, golden: "solution-anonymous.html",
			has: []string{`<p>Finds <strong>similar</strong> CAD parts.</p>`, `<a class="button try" id="aim-try" href="http://parts.aim.test/">`,
				`<a href="/?phase=product-development">Product development</a>`, `<a href="/?tag=cad">#cad</a>`,
				`<img id="aim-thumb" src="/s/parts/thumbnail?g=11"`, `href="http://parts.aim.test/openapi.json"`,
				`(offered on aim by ACME Engineering)`, `<a href="mailto:sales@acme.example"`, `generation 11`,
				`<time datetime="2026-03-03T06:06:07Z">3 March 2026, 06:06 UTC</time>`}},
		{name: "signed in: the form is filled in", path: "/s/parts", v: ann, status: 200, golden: "solution-ann.html",
			has: []string{`name="name" type="text" value="Ann"`, `name="email" type="email" value="ann@example.test"`}},
		{name: "the private one for whom it admits", path: "/s/vault", v: ann, status: 200, has: []string{`<span class="badge private"`}},
		{name: "the private one for others: as none", path: "/s/vault", v: bob, status: 404, has: []string{"There is no page /s/vault here."}},
		{name: "none", path: "/s/nope", v: bob, status: 404, has: []string{"There is no page /s/nope here."}},
		{name: "sent", path: "/s/parts?sent=1", v: anonymous, status: 200, has: []string{`id="aim-sent" role="status"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, m.catalog(tc.v), tc.path)
			body := rec.Body.String()
			if rec.Code != tc.status || rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("X-Frame-Options") != "DENY" {
				t.Errorf("status %d, headers %v; want %d, no-store, and no framing", rec.Code, rec.Header(), tc.status)
			}
			checkCSP(t, rec)
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("the page lacks %s", s)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, stable(body))
			}
		})
	}
}

// TestUnsafeDescription is AC6 of issue 14 on the page: a description
// with scripts, event handlers and javascript: links renders with none
// of them, on the solution's page and on its card.
func TestUnsafeDescription(t *testing.T) {
	m := newMarket(t)
	m.sols[0].Description = "Hi <script>alert(1)</script> <img src=x onerror=alert(2)> <a href=\"#\" onclick=\"steal()\">x</a>\n\n" +
		"[click](javascript:alert(3)) <iframe src=\"https://evil.example\"></iframe> <svg onload=alert(4)></svg>\n\n" +
		"<style>body{display:none}</style> [data](data:text/html;base64,PHNjcmlwdD4=) <form action=\"https://evil.example\"><input name=p></form>"
	for _, path := range []string{"/s/parts", "/?q=parts"} {
		body := get(t, m.catalog(anonymous), path).Body.String()
		// The page's own markup has no script, handler or frame at all
		// (a removed script's text may stay, as text).
		for _, bad := range []string{"<script", "onerror", "onclick", "onload", "javascript:", "<iframe", "<svg", "data:text/html",
			"body{display:none}", `action="https://evil.example"`, "<input name=\"p\"", "<input name=p"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s renders %q:\n%s", path, bad, body)
			}
		}
	}
}

// TestThumbnail serves a thumbnail as its checked type and nothing
// else, cacheably, and to those its solution admits only.
func TestThumbnail(t *testing.T) {
	m := newMarket(t)
	m.sols[3].Manifest.Thumbnail = "vault.png"
	if err := m.st.PutThumbnail(context.Background(), "vault", "image/png", pngBytes(t)); err != nil {
		t.Fatal(err)
	}
	rec := get(t, m.catalog(anonymous), "/s/parts/thumbnail?g=11")
	h := rec.Header()
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), pngBytes(t)) || h.Get("Content-Type") != "image/png" ||
		h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "default-src 'none'" ||
		h.Get("Cache-Control") != "public, max-age=86400" || h.Get("ETag") == "" {
		t.Fatalf("%d %v", rec.Code, h)
	}
	req := httptest.NewRequest(http.MethodGet, "/s/parts/thumbnail?g=11", nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	again := httptest.NewRecorder()
	m.catalog(anonymous).ServeHTTP(again, req)
	if again.Code != http.StatusNotModified {
		t.Errorf("with its ETag: %d, want 304", again.Code)
	}
	for _, tc := range []struct {
		name, path string
		v          viewer
		status     int
		cache      string
	}{
		{"a private one, admitted", "/s/vault/thumbnail", ann, 200, "private, max-age=86400"},
		{"a private one, not admitted", "/s/vault/thumbnail", bob, 404, ""},
		{"a private one, anonymous", "/s/vault/thumbnail", anonymous, 404, ""},
		{"none in the manifest", "/s/trends/thumbnail", anonymous, 404, ""},
		{"no such solution", "/s/nope/thumbnail", anonymous, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := get(t, m.catalog(tc.v), tc.path)
			if rec.Code != tc.status || (tc.cache != "" && rec.Header().Get("Cache-Control") != tc.cache) {
				t.Errorf("%d %q, want %d %q", rec.Code, rec.Header().Get("Cache-Control"), tc.status, tc.cache)
			}
		})
	}
}

// post sends the contact form of solution name with fields as v, with
// the token the page gave v unless fields has one, from origin.
func (m *market) post(t *testing.T, c *Catalog, v viewer, name, origin string, fields url.Values, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	if !fields.Has("csrf") {
		page := get(t, m.catalog(v), "/s/"+name).Body.String()
		tok := regexp.MustCompile(`name="csrf" value="(\d+\.[^"]+)"`).FindStringSubmatch(page)
		if tok == nil {
			t.Fatalf("the page of %s has no contact form:\n%s", name, page)
		}
		fields.Set("csrf", tok[1])
	}
	req := httptest.NewRequest(http.MethodPost, "https://aim.test/s/"+name+"/contact", strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	req.RemoteAddr = "192.0.2.7:5555"
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	return rec
}

// TestContact sends the contact form: a good one is stored for the
// provider and leads to the confirmation; bad ones (AC6: an address that
// is none, a 1 MB message) come back with what is wrong beside each
// field and are not stored; a form from elsewhere or out of date is
// refused; a client over the limit gets 429.
func TestContact(t *testing.T) {
	m := newMarket(t)
	good := func() url.Values {
		return url.Values{"name": {"Dana"}, "organisation": {"Initech"}, "email": {"dana@initech.example"}, "message": {"Can we try it on our parts?"}}
	}
	with := func(k, v string) url.Values { f := good(); f.Set(k, v); return f }
	stored := func() int {
		qs, err := m.st.ListInquiries(context.Background(), store.InquiryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return len(qs)
	}
	for _, tc := range []struct {
		name   string
		v      viewer
		sol    string
		origin string
		fields url.Values
		header []string
		status int
		has    []string
		golden string
		stored int // inquiries stored after it
	}{
		{name: "an address that is none", v: anonymous, sol: "parts", fields: with("email", "dana at initech"), status: 422, golden: "solution-problems.html",
			has: []string{`role="alert"`, `<a href="#aim-c-email">E-mail: &#34;dana at initech&#34; is not an e-mail address like name@example.com</a>`,
				`aria-invalid="true" aria-describedby="aim-c-email-error"`, `value="Dana"`, `Can we try it on our parts?</textarea>`}},
		{name: "nothing but spaces", v: anonymous, sol: "parts", fields: url.Values{"name": {"  "}, "email": {""}, "message": {" "}}, status: 422,
			has: []string{"Your name: is required", "E-mail: is required", "Message: is required"}},
		{name: "a 1 MB message", v: anonymous, sol: "parts", fields: with("message", strings.Repeat("spam ", 200_000)), status: 413,
			has: []string{"the form is larger than 64 KiB: the message may have at most 5000 characters"}},
		{name: "a message over its limit", v: anonymous, sol: "parts", fields: with("message", strings.Repeat("x", 5001)), status: 422,
			has: []string{"Message: is 5001 characters; at most 5000"}},
		{name: "from a solution's page", v: anonymous, sol: "parts", origin: "http://evil.aim.test", fields: good(), status: 403,
			has: []string{"The form was out of date"}},
		{name: "from a solution's page, by Sec-Fetch-Site", v: anonymous, sol: "parts", fields: good(), header: []string{"Sec-Fetch-Site", "same-site"}, status: 403},
		{name: "from another site, by Sec-Fetch-Site", v: anonymous, sol: "parts", fields: good(), header: []string{"Sec-Fetch-Site", "cross-site"}, status: 403},
		{name: "without the token", v: anonymous, sol: "parts", fields: with("csrf", ""), status: 403},
		{name: "another viewer's token", v: bob, sol: "parts", fields: with("csrf", m.token(t, ann, "parts")), status: 403},
		{name: "another solution's token", v: anonymous, sol: "parts", fields: with("csrf", m.token(t, anonymous, "planner")), status: 403},
		{name: "a private one for whom it does not admit", v: bob, sol: "vault", fields: with("csrf", m.token(t, bob, "parts")), status: 404},
		{name: "sent", v: anonymous, sol: "parts", origin: "https://aim.test", fields: good(), header: []string{"Sec-Fetch-Site", "same-origin"}, status: 303, stored: 1},
		{name: "sent when signed in", v: ann, sol: "vault", fields: good(), status: 303, stored: 2},
		{name: "one more from the client", v: anonymous, sol: "planner", fields: good(), status: 303, stored: 3},
		{name: "over the client's limit", v: anonymous, sol: "trends", fields: good(), status: 429, stored: 3,
			has: []string{"Nothing was sent: too many messages came from this address lately. Try again in 60 minutes."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stored()
			c := m.catalog(tc.v)
			rec := m.post(t, c, tc.v, tc.sol, tc.origin, tc.fields, tc.header...)
			body := rec.Body.String()
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d:\n%.2000s", rec.Code, tc.status, body)
			}
			for _, s := range tc.has {
				if !strings.Contains(body, s) {
					t.Errorf("the answer lacks %s:\n%.4000s", s, body)
				}
			}
			if tc.golden != "" {
				golden(t, tc.golden, stable(body))
			}
			want := tc.stored
			if want == 0 {
				want = before
			}
			if n := stored(); n != want {
				t.Errorf("%d inquiries stored, want %d", n, want)
			}
			if tc.status == 303 && rec.Header().Get("Location") != "/s/"+tc.sol+"?sent=1#contact" {
				t.Errorf("Location %q", rec.Header().Get("Location"))
			}
		})
	}
	qs, _ := m.st.ListInquiries(context.Background(), store.InquiryFilter{Solution: "parts"})
	if len(qs) != 1 || qs[0].Owner != "acme" || qs[0].Name != "Dana" || qs[0].Organisation != "Initech" || qs[0].Email != "dana@initech.example" {
		t.Errorf("stored %+v", qs)
	}
	// Nothing of a visitor is shown to the next one.
	for _, v := range []viewer{anonymous, bob} {
		body := get(t, m.catalog(v), "/s/parts").Body.String()
		if strings.Contains(body, "Dana") || strings.Contains(body, "initech") || strings.Contains(body, "our parts") {
			t.Errorf("%s sees another visitor's inquiry", v.Identity.Email)
		}
	}
}

// token is the contact form's token the page gives v for solution.
func (m *market) token(t *testing.T, v viewer, sol string) string {
	t.Helper()
	c := m.catalog(v)
	tok, err := c.formToken(context.Background(), Viewer(v), sol, clock)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestFormTokenExpires: a form's token is good for formLifetime.
func TestFormTokenExpires(t *testing.T) {
	m := newMarket(t)
	c := m.catalog(anonymous)
	tok := m.token(t, anonymous, "parts")
	if !c.checkToken(context.Background(), Viewer(anonymous), "parts", tok, clock.Add(formLifetime-time.Second)) {
		t.Error("refused within its lifetime")
	}
	if c.checkToken(context.Background(), Viewer(anonymous), "parts", tok, clock.Add(formLifetime)) {
		t.Error("taken after its lifetime")
	}
}

// TestSearchIndex: the catalog's kept search text follows a solution
// whose description changed, and forgets one no longer listed (it never
// keeps more than are listed).
func TestSearchIndex(t *testing.T) {
	m := newMarket(t)
	sols := slices.Clone(m.sols)
	admin := viewer{Identity: auth.Identity{Role: auth.Admin, Email: "root@example.test"}}
	c := NewCatalog(listFunc(func() []*solution.Info { return sols }), admin, NewPages(nil))
	if got := shown(get(t, c, "/?q=similar").Body.String()); got != "parts" {
		t.Fatalf("search: %s", got)
	}
	changed := *sols[0]
	changed.Description = "Ranks lookalike parts."
	sols[0] = &changed
	if got := shown(get(t, c, "/?q=similar").Body.String()); got != "" {
		t.Errorf("the old description still matches: %s", got)
	}
	if got := shown(get(t, c, "/?q=lookalike").Body.String()); got != "parts" {
		t.Errorf("the new description does not match: %s", got)
	}
	sols = sols[1:]
	get(t, c, "/?q=x")
	if snap := *c.search.snap.Load(); len(snap) != 3 || snap["parts"] != nil {
		t.Errorf("the index keeps %d solutions (parts: %v), want the 3 listed", len(snap), snap["parts"] != nil)
	}
}

// listFunc is a Lister whose solutions change between requests.
type listFunc func() []*solution.Info

func (f listFunc) List(context.Context) []*solution.Info { return f() }

// TestCatalogConcurrent serves the catalog to many visitors at once
// while the solutions change (run with -race): the search index and the
// caches are shared.
func TestCatalogConcurrent(t *testing.T) {
	m := newMarket(t)
	var mu sync.Mutex
	sols := slices.Clone(m.sols)
	c := NewCatalog(listFunc(func() []*solution.Info { mu.Lock(); defer mu.Unlock(); return slices.Clone(sols) }), anonymous, NewPages(nil))
	c.Store = m.st
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 30 {
				if g == 0 && i%5 == 0 {
					changed := *sols[1]
					changed.Description = fmt.Sprintf("Plans lines, version %d.", i)
					mu.Lock()
					sols[1] = &changed
					mu.Unlock()
				}
				for _, q := range []string{"/?q=plans", "/?sort=used", "/?tag=cad&q=parts", "/s/parts"} {
					if rec := get(t, c, q); rec.Code != http.StatusOK {
						t.Errorf("%s: %d", q, rec.Code)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if got := shown(get(t, c, "/?q=version+25").Body.String()); got != "planner" {
		t.Errorf("after the changes, a search for the last description finds %q", got)
	}
}
