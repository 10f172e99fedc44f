// Package web serves aim's own pages on the apex host: the marketplace
// visitors browse (the catalog, searched and filtered; a page per
// solution with its contact form), and the notices the sign-in shows
// (not allowed, not configured), all server-rendered in one style,
// usable without JavaScript, on a phone and from the keyboard.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/markdown"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

//go:embed templates/*.html
var templates embed.FS

// Lister lists the solutions to show.
type Lister interface {
	List(ctx context.Context) []*solution.Info
}

// Viewer is whom a page is for, as its header shows them.
type Viewer struct {
	Identity auth.Identity
	// SignIn is the "Sign in" link of an anonymous viewer; empty when aim
	// has no sign-in configured.
	SignIn string
	// SignOut is the action of a signed-in viewer's "Sign out" form, and
	// CSRF the token the form posts with it; empty when there is none (a
	// token holder is no signed-in person).
	SignOut, CSRF string
}

// Viewers tells who looks at a page.
type Viewers interface {
	Viewer(r *http.Request) Viewer
}

// Pages renders aim's pages.
type Pages struct {
	tmpl *template.Template
	log  *slog.Logger
}

// NewPages parses the templates. A nil log means slog's default.
func NewPages(log *slog.Logger) *Pages {
	if log == nil {
		log = slog.Default()
	}
	funcs := template.FuncMap{"fieldOf": fieldOf}
	return &Pages{tmpl: template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")), log: log}
}

// Notice is a page that tells the viewer one thing: why they may not go
// on, say, and where they can.
type Notice struct {
	Title      string
	Paragraphs []string
	// Link, when set, is the page's one button, labelled LinkText.
	Link, LinkText string
}

// Notice answers with n as a page, with status.
func (p *Pages) Notice(w http.ResponseWriter, v Viewer, status int, n Notice) {
	p.render(w, status, "notice.html", struct {
		Viewer     Viewer
		Status     int
		StatusText string
		Notice     Notice
	}{v, status, http.StatusText(status), n})
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Every page shows who is signed in: no cache may keep it.
	w.Header().Set("Cache-Control", "no-store")
	guardHeaders(w)
	w.WriteHeader(status)
	if err := p.tmpl.ExecuteTemplate(w, name, data); err != nil {
		p.log.Error("rendering a page", "page", name, "err", err)
	}
}

// pageCSP is the policy of every page aim renders: no script at all (the
// pages need none), styles only from the layout's one <style>, by its
// hash, and aim's own stylesheet, images only from the apex (thumbnails),
// no <base>, no plugins, no framing. form-action is left open, as it does
// not fall back to default-src: "Try it" and sign-in post to the apex and
// are redirected on to a solution's host or the OpenID provider, which
// Chromium checks against form-action too.
var pageCSP = "default-src 'none'; img-src 'self'; style-src 'self' '" + layoutStyleHash() +
	"'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"

// layoutStyleHash is the CSP source of the layout's <style> block, which
// the template writes as it is (it holds no actions).
func layoutStyleHash() string {
	b, err := templates.ReadFile("templates/layout.html")
	if err != nil {
		panic(err)
	}
	_, rest, ok1 := strings.Cut(string(b), "<style>")
	css, _, ok2 := strings.Cut(rest, "</style>")
	if !ok1 || !ok2 {
		panic("templates/layout.html has no <style> block")
	}
	sum := sha256.Sum256([]byte(css))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// guardHeaders keep aim's pages (every one render writes, the notices of
// sign-in included) out of frames: every solution is same-site with the
// apex, and a solution's page must not overlay the contact form's, the
// sign-out's or the admin page's buttons with its own (clickjacking).
func guardHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", pageCSP)
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
}

// Catalog is the marketplace on the apex host: the catalog at /, a page
// per solution at /s/NAME with its thumbnail and its contact form.
type Catalog struct {
	list    Lister
	viewers Viewers
	pages   *Pages
	md      *markdown.Renderer
	mux     *http.ServeMux
	now     func() time.Time
	// CAURL, when set, is where visitors download the CA that signs this
	// server's certificates (TLS mode internal).
	CAURL string
	// Store, when set, gives the pages the solutions' thumbnails, their
	// recent use (the "most used" order), the providers' display names
	// and the key of the contact form's token. Nil means none of these:
	// no thumbnails, "most used" falls back to newest, and no contact
	// form.
	Store Store
	// Inquirer, when set with Store, takes what the contact form sends;
	// share the API's, so that both count against one limit. Nil means
	// no contact form.
	Inquirer Inquirer

	recent   recent
	search   searchIndex
	excerpts sync.Map // solution name → excerpt
	keyMu    sync.Mutex
	key      []byte // the form token's, read once from Store
}

// Store is the part of aim's store the pages read; *store.Store is one.
type Store interface {
	UsageTotals(ctx context.Context, since string) (map[string]int64, error)
	ListProviders(ctx context.Context) ([]store.Provider, error)
	GetThumbnail(ctx context.Context, solution string) (*store.Thumbnail, error)
	Key(ctx context.Context, name string) ([]byte, error)
}

// Inquirer takes a visitor's inquiry about a solution: api.Inquirer,
// whose *api.InquiryError tells the form what to say.
type Inquirer interface {
	Submit(ctx context.Context, sol *solution.Info, f inquiry.Form, client netip.Addr) (*store.Inquiry, error)
}

// NewCatalog builds the marketplace's pages. Nil viewers means every
// viewer is anonymous, with no way to sign in.
func NewCatalog(l Lister, viewers Viewers, pages *Pages) *Catalog {
	c := &Catalog{list: l, viewers: viewers, pages: pages, md: markdown.New(), mux: http.NewServeMux(), now: time.Now}
	c.mux.HandleFunc("GET /{$}", c.catalog)
	c.mux.HandleFunc("GET /s/{name}", c.solution)
	c.mux.HandleFunc("GET /s/{name}/thumbnail", c.thumbnail)
	c.mux.HandleFunc("POST /s/{name}/contact", c.contact)
	c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		c.notFound(w, r, c.viewer(r))
	})
	return c
}

func (c *Catalog) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

func (c *Catalog) viewer(r *http.Request) Viewer {
	if c.viewers == nil {
		return Viewer{}
	}
	return c.viewers.Viewer(r)
}

// notFound is the answer for a page that is not there, and for a
// solution the viewer may not see: the same, so that a private one's
// name cannot be probed.
func (c *Catalog) notFound(w http.ResponseWriter, r *http.Request, v Viewer) {
	c.pages.Notice(w, v, http.StatusNotFound, Notice{Title: "Not found",
		Paragraphs: []string{"There is no page " + r.URL.Path + " here."}, Link: "/", LinkText: "Back to the catalog"})
}

// listable reports whether the catalog shows in to id: what auth.Lists
// allows. A solution whose manifest could not be read is shown to admins
// only.
func listable(id auth.Identity, in *solution.Info) bool {
	if in.Manifest == nil {
		return id.IsAdmin()
	}
	return auth.Lists(id, in.Owner, in.Manifest)
}

// admitted reports whether id may open in's page: whom auth.Admits lets
// use it (everyone, for an unlisted one: its page is as open as its URL).
func admitted(id auth.Identity, in *solution.Info) bool {
	if in.Manifest == nil {
		return id.IsAdmin()
	}
	return auth.Admits(id, in.Owner, in.Manifest)
}
