package web

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// solutionPage is what solution.html shows.
type solutionPage struct {
	Viewer  Viewer
	Sol     *solution.Info
	Private bool
	// Reason is why the solution is in its state, for those who manage
	// it only.
	Reason      string
	State       string
	Description template.HTML
	Phases      []option
	Tags        []option
	// Provider is the manifest's provider: its name, and its contact as a
	// link (ContactURL, when it is a URL or an address) or as text.
	Provider            spec.Provider
	ContactURL          string
	Offered             string // the owner's display name in the store
	Thumb, ThumbAlt     string
	Updated, UpdatedISO string
	// Contact is the contact form; nil when aim takes no inquiries.
	Contact *contactForm
}

// find returns the solution called name if id may open its page, else
// nil: a solution id may not see is as absent as one that does not
// exist.
func (c *Catalog) find(ctx context.Context, id auth.Identity, name string) *solution.Info {
	for _, in := range c.list.List(ctx) {
		if in.Name == name {
			if !admitted(id, in) {
				return nil
			}
			return in
		}
	}
	return nil
}

func (c *Catalog) solution(w http.ResponseWriter, r *http.Request) {
	v := c.viewer(r)
	in := c.find(r.Context(), v.Identity, r.PathValue("name"))
	if in == nil {
		c.notFound(w, r, v)
		return
	}
	form := c.newContactForm(r.Context(), v, in)
	if form != nil && r.URL.Query().Get("sent") == "1" {
		form.Sent = true
	}
	c.renderSolution(w, r, http.StatusOK, v, in, form)
}

func (c *Catalog) renderSolution(w http.ResponseWriter, r *http.Request, status int, v Viewer, in *solution.Info, form *contactForm) {
	p := solutionPage{Viewer: v, Sol: in, State: stateLabel(string(in.State)), Description: c.md.HTML(in.Description),
		Provider: in.Provider, ContactURL: contactURL(in.Provider.Contact), Contact: form}
	if v.Identity.Manages(in.Owner) {
		p.Reason = in.Reason
	}
	if m := in.Manifest; m != nil {
		p.Private = m.IsPrivate()
		for _, ph := range m.Phases {
			p.Phases = append(p.Phases, option{Label: ph.Title(), URL: link(Query{Phase: string(ph)}, 0)})
		}
		if p.Thumb = c.thumbURL(in); p.Thumb != "" {
			p.ThumbAlt = "Picture of " + in.Title
		}
	}
	for _, t := range in.Tags {
		p.Tags = append(p.Tags, option{Label: t, URL: link(Query{Tag: t}, 0)})
	}
	// The owner's name in the store, unless the manifest says the same.
	if _, names := c.recentData(r.Context()); in.Owner != "" && names[in.Owner] != in.Provider.Name {
		p.Offered = names[in.Owner]
	}
	if at := in.UpdatedAt; !at.IsZero() {
		p.Updated, p.UpdatedISO = at.UTC().Format("2 January 2006, 15:04 UTC"), at.UTC().Format("2006-01-02T15:04:05Z")
	}
	c.pages.render(w, status, "solution.html", p)
}

// contactURL is a provider's contact as a link: an http(s) URL as it
// is, an e-mail address as mailto:; anything else is shown as text.
func contactURL(contact string) string {
	if u, err := url.Parse(contact); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		return contact
	}
	if a, err := mail.ParseAddress(contact); err == nil && a.Address == contact {
		return "mailto:" + contact
	}
	return ""
}

// thumbURL is in's thumbnail's address, changing with each generation so
// that a new one is fetched anew; empty when it has none.
func (c *Catalog) thumbURL(in *solution.Info) string {
	if c.Store == nil || in.Manifest == nil || in.Manifest.Thumbnail == "" {
		return ""
	}
	return solutionPath(in.Name) + "/thumbnail?g=" + strconv.FormatInt(in.Generation, 10)
}

// thumbnail serves a solution's picture, to those it admits only, as the
// type its deploy checked it to be, and as nothing else: no sniffing,
// and a policy that lets nothing in it run or load.
func (c *Catalog) thumbnail(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var in *solution.Info
	for _, s := range c.list.List(r.Context()) {
		if s.Name == name {
			in = s
			break
		}
	}
	// Only a private solution needs to know who asks (a session read).
	if in == nil || in.Manifest == nil || in.Manifest.Thumbnail == "" || c.Store == nil ||
		(in.Manifest.IsPrivate() && !admitted(c.viewer(r).Identity, in)) {
		http.Error(w, "no such thumbnail", http.StatusNotFound)
		return
	}
	t, err := c.Store.GetThumbnail(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "no such thumbnail", http.StatusNotFound)
		return
	}
	if err != nil {
		c.pages.log.Error("reading a thumbnail", "solution", name, "err", err)
		http.Error(w, "the thumbnail could not be read", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", t.ContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("ETag", t.ETag)
	// The URL changes with each generation, so a day is safe; a private
	// solution's stays in the browser's own cache, never a shared one.
	if in.Manifest.IsPrivate() {
		h.Set("Cache-Control", "private, max-age=86400")
	} else {
		h.Set("Cache-Control", "public, max-age=86400")
	}
	http.ServeContent(w, r, "", t.UpdatedAt, bytes.NewReader(t.Data))
}
