package web

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/aimhub/aim/internal/store"
)

// The admin page, /admin: providers, solutions and API tokens, with the
// actions the API allows admins (add and remove providers, revoke
// tokens, wake, sleep and remove solutions). Tokens are made with the
// CLI, which shows the secret once.

// adminPageSize is how many solutions one page of /admin lists.
const adminPageSize = 50

// adminPage is what admin.html shows.
type adminPage struct {
	Viewer    Viewer
	Flash     string
	Providers []providerRow
	Solutions []adminSolution
	Paging    paging
	Tokens    []tokenRow
}

type providerRow struct {
	Name, DisplayName, Email, Webhook, Created string
	Owns                                       []string
}

type adminSolution struct {
	Name, Title, URL, Owner, State, Reason, Updated string
	Actions                                         actionForms
}

type tokenRow struct {
	ID, Name, Role, Whose, Created, Expires, LastUsed, Revoked string
	// Active is false for a revoked or expired token.
	Active bool
}

// asAdmin returns the viewer if they are an admin, else answers 403 (or
// sends them to sign in) and returns false.
func (a *account) asAdmin(w http.ResponseWriter, r *http.Request) (Viewer, bool) {
	v, ok := a.signedIn(w, r)
	if !ok {
		return v, false
	}
	if !v.Identity.IsAdmin() {
		who := v.Identity.Email
		if who == "" {
			who = "you"
		}
		a.cfg.Pages.Notice(w, v, http.StatusForbidden, Notice{Title: "For admins only",
			Paragraphs: []string{"The admin page is for the platform's admins, and " + who + " is signed in as a " + string(v.Identity.Role) + "."},
			Link:       "/me", LinkText: "Your page"})
		return v, false
	}
	return v, true
}

func (a *account) admin(w http.ResponseWriter, r *http.Request) {
	v, ok := a.asAdmin(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	sols := a.cfg.Controller.List(ctx)
	owned := map[string][]string{}
	for _, in := range sols {
		owned[in.Owner] = append(owned[in.Owner], in.Name)
	}
	ps, err := a.cfg.Store.ListProviders(ctx)
	if err != nil {
		a.failed(w, r, v, "listing providers", err)
		return
	}
	ts, err := a.cfg.Store.ListTokens(ctx, "")
	if err != nil {
		a.failed(w, r, v, "listing tokens", err)
		return
	}
	p := adminPage{Viewer: v, Flash: flash(r)}
	for _, pr := range ps {
		p.Providers = append(p.Providers, providerRow{Name: pr.Name, DisplayName: pr.DisplayName, Email: pr.Email, Webhook: pr.Webhook,
			Created: stamp(pr.CreatedAt), Owns: owned[pr.Name]})
	}
	shown, pg := pageOf(r, "/admin", sols, adminPageSize)
	p.Paging = pg
	for _, in := range shown {
		p.Solutions = append(p.Solutions, adminSolution{Name: in.Name, Title: in.Title, URL: in.URL, Owner: ownerOf(in.Owner),
			State: string(in.State), Reason: in.Reason, Updated: stamp(in.UpdatedAt), Actions: actionsFor(in, v.CSRF, "/admin")})
	}
	now := a.cfg.Now()
	for _, t := range ts {
		row := tokenRow{ID: t.ID, Name: t.Name, Role: string(t.Role), Whose: whose(t), Created: stamp(t.CreatedAt),
			Expires: stamp(t.ExpiresAt), LastUsed: stamp(t.LastUsedAt), Revoked: "no", Active: true}
		switch {
		case !t.RevokedAt.IsZero():
			row.Revoked, row.Active = stamp(t.RevokedAt), false
		case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
			row.Expires, row.Active = stamp(t.ExpiresAt)+" (expired)", false
		}
		p.Tokens = append(p.Tokens, row)
	}
	a.cfg.Pages.render(w, http.StatusOK, "admin.html", p)
}

// whose says whom a token stands for: its provider, or a visitor's
// address and groups.
func whose(t store.Token) string {
	switch {
	case t.Provider != "":
		return t.Provider
	case t.Email != "" && len(t.Groups) > 0:
		return t.Email + " (" + strings.Join(t.Groups, ", ") + ")"
	case t.Email != "":
		return t.Email
	}
	return "—"
}

// addProvider makes a new provider from the form's name, display name
// and e-mail; an existing one is left as it is.
func (a *account) addProvider(w http.ResponseWriter, r *http.Request) {
	v, ok := a.asAdmin(w, r)
	if !ok || !a.formPosted(w, r, v) {
		return
	}
	ctx := r.Context()
	p := &store.Provider{Name: strings.TrimSpace(r.PostFormValue("name")), DisplayName: strings.TrimSpace(r.PostFormValue("displayName")),
		Email: strings.TrimSpace(r.PostFormValue("email"))}
	_, err := a.cfg.Store.GetProvider(ctx, p.Name)
	switch {
	case err == nil:
		a.cfg.Pages.Notice(w, v, http.StatusConflict, Notice{Title: "Not added",
			Paragraphs: []string{"Provider " + p.Name + " exists already; aim provider set changes its details."}, Link: "/admin", LinkText: "Back"})
		return
	case !errors.Is(err, store.ErrNotFound):
		a.failed(w, r, v, "reading provider "+p.Name, err)
		return
	}
	if err := a.cfg.Store.PutProvider(ctx, p); err != nil {
		a.failed(w, r, v, "adding provider "+p.Name, err)
		return
	}
	a.log.Info("provider added from the admin page", "provider", p.Name, "by", v.Identity.Email)
	done(w, r, "provider-added", p.Name)
}

// removeProvider removes a provider with its tokens, refusing, as the
// API does, while it owns solutions (which the controller is asked
// about, as well as the store: on Kubernetes the Solutions record their
// owners).
func (a *account) removeProvider(w http.ResponseWriter, r *http.Request) {
	v, ok := a.asAdmin(w, r)
	if !ok || !a.formPosted(w, r, v) {
		return
	}
	name := r.PathValue("name")
	if r.PostFormValue("confirm") != "yes" {
		a.cfg.Pages.Notice(w, v, http.StatusBadRequest, Notice{Title: "Not removed",
			Paragraphs: []string{"Tick the box beside the Remove button to say that provider " + name + " is to go, with its tokens."}, Link: "/admin", LinkText: "Back"})
		return
	}
	var owns []string
	for _, in := range a.cfg.Controller.List(r.Context()) {
		if in.Owner == name {
			owns = append(owns, in.Name)
		}
	}
	var err error
	if len(owns) > 0 {
		slices.Sort(owns)
		err = &store.InUseError{Provider: name, Solutions: owns}
	} else {
		err = a.cfg.Store.DeleteProvider(r.Context(), name)
	}
	if err != nil {
		a.failed(w, r, v, "removing provider "+name, err)
		return
	}
	a.log.Info("provider removed from the admin page", "provider", name, "by", v.Identity.Email)
	done(w, r, "provider-removed", name)
}

func (a *account) revokeToken(w http.ResponseWriter, r *http.Request) {
	v, ok := a.asAdmin(w, r)
	if !ok || !a.formPosted(w, r, v) {
		return
	}
	id := r.PathValue("id")
	if err := a.cfg.Store.RevokeToken(r.Context(), id); err != nil {
		a.failed(w, r, v, "revoking token "+id, err)
		return
	}
	a.log.Info("token revoked from the admin page", "token", id, "by", v.Identity.Email)
	done(w, r, "token-revoked", id)
}
