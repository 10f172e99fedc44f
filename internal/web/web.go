// Package web serves aim's own pages on the apex host: the catalog of
// solutions that visitors browse, and the notices the sign-in shows (not
// allowed, not configured), all server-rendered in one style, usable
// without JavaScript, on a phone and from the keyboard.
package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
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
	return &Pages{tmpl: template.Must(template.ParseFS(templates, "templates/*.html")), log: log}
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
	w.WriteHeader(status)
	if err := p.tmpl.ExecuteTemplate(w, name, data); err != nil {
		p.log.Error("rendering a page", "page", name, "err", err)
	}
}

// Catalog is the page at / on the apex host.
type Catalog struct {
	list    Lister
	viewers Viewers
	pages   *Pages
	// CAURL, when set, is where visitors download the CA that signs this
	// server's certificates (TLS mode internal).
	CAURL string
}

// NewCatalog builds the catalog page. Nil viewers means every viewer is
// anonymous, with no way to sign in.
func NewCatalog(l Lister, viewers Viewers, pages *Pages) *Catalog {
	return &Catalog{list: l, viewers: viewers, pages: pages}
}

// card is a solution as the catalog shows it.
type card struct {
	*solution.Info
	Private bool
}

func (c *Catalog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	var v Viewer
	if c.viewers != nil {
		v = c.viewers.Viewer(r)
	}
	c.pages.render(w, http.StatusOK, "catalog.html", struct {
		Viewer    Viewer
		Solutions []card
		CAURL     string
	}{v, visible(v.Identity, c.list.List(r.Context())), c.CAURL})
}

// visible is what the catalog shows id of sols: what auth.Lists allows.
// A solution whose manifest could not be read is shown to admins only.
func visible(id auth.Identity, sols []*solution.Info) []card {
	var out []card
	for _, in := range sols {
		if in.Manifest == nil {
			if id.IsAdmin() {
				out = append(out, card{Info: in})
			}
			continue
		}
		if auth.Lists(id, in.Owner, in.Manifest) {
			out = append(out, card{Info: in, Private: in.Manifest.IsPrivate()})
		}
	}
	return out
}
