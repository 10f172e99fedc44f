// Package web serves aim's own pages on the apex host: the catalog of
// solutions that visitors browse.
package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"net/http"

	"github.com/aimhub/aim/internal/solution"
)

//go:embed templates/*.html
var templates embed.FS

// Lister lists the solutions to show.
type Lister interface {
	List(ctx context.Context) []*solution.Info
}

// Catalog is the page at / on the apex host.
type Catalog struct {
	list Lister
	tmpl *template.Template
	log  *slog.Logger
	// CAURL, when set, is where visitors download the CA that signs this
	// server's certificates (TLS mode internal).
	CAURL string
}

// NewCatalog builds the catalog page.
func NewCatalog(l Lister, log *slog.Logger) *Catalog {
	return &Catalog{
		list: l,
		tmpl: template.Must(template.ParseFS(templates, "templates/*.html")),
		log:  log,
	}
}

func (c *Catalog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := c.tmpl.ExecuteTemplate(w, "catalog.html", struct {
		Solutions []*solution.Info
		CAURL     string
	}{c.list.List(r.Context()), c.CAURL}); err != nil {
		c.log.Error("rendering the catalog", "err", err)
	}
}
