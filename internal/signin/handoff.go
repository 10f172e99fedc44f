package signin

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/web"
)

// handOff is where the gateway sends a browser that has no session on a
// private solution's host (Guard.SignInURL): it signs the browser in if
// need be, then gives the solution's host a one-time code for a session
// of its own (the gateway turns it into a host-only cookie there), to
// those the solution admits. Deciding reads the solution's manifest and
// wakes nothing.
func (s *SignIn) handOff(w http.ResponseWriter, r *http.Request) {
	if !s.Enabled() {
		s.notConfigured(w, r)
		return
	}
	q := r.URL.Query()
	name, back := q.Get("name"), gateway.LocalPath(q.Get("return"))
	if spec.ValidName(name) != nil {
		s.notice(w, r, http.StatusBadRequest, web.Notice{Title: "No such solution", Paragraphs: []string{"This link names no solution."},
			Link: "/", LinkText: "Back to the catalog"})
		return
	}
	se, secret := s.session(r)
	if se == nil {
		http.Redirect(w, r, "/auth/login?"+url.Values{"return": {r.URL.RequestURI()}}.Encode(), http.StatusFound)
		return
	}
	in, err := s.sols.Get(r.Context(), name)
	switch {
	case errors.Is(err, solution.ErrNotFound):
		s.notice(w, r, http.StatusNotFound, web.Notice{Title: "No such solution", Paragraphs: []string{"There is no solution called " + name + "."},
			Link: "/", LinkText: "Back to the catalog"})
		return
	case err != nil:
		s.internal(w, r, "looking solution "+name+" up", err)
		return
	case in.Manifest == nil || !in.Manifest.IsPrivate():
		// Nothing to hand over: a public or unlisted solution takes
		// everyone.
		http.Redirect(w, r, s.solutionURL(name)+back, http.StatusSeeOther)
		return
	}
	id := identityOf(se)
	if !auth.AdmitsPrivate(id, in.Owner, in.Manifest.Access) {
		s.log.Info("refused a private solution", "solution", name, "email", se.Email)
		s.pages.Notice(w, s.viewerOf(r, se), http.StatusForbidden, web.Notice{Title: in.Title + " is private",
			Paragraphs: []string{
				"It is open to the people its provider chose, and " + who(id) + " is not among them.",
				"Ask the provider for access, or sign out and sign in as someone it admits.",
			},
			Link: "/", LinkText: "Back to the catalog"})
		return
	}
	code, err := s.st.CreateCode(r.Context(), secret, name, codeLifetime)
	if err != nil {
		s.internal(w, r, "making a sign-in code for "+name, err)
		return
	}
	http.Redirect(w, r, s.solutionURL(name)+gateway.SignInPath+"?"+url.Values{"code": {code}, "return": {back}}.Encode(), http.StatusSeeOther)
}

// who names a person in a refusal.
func who(id auth.Identity) string {
	if id.Email != "" {
		return id.Email
	}
	if id.Name != "" {
		return id.Name
	}
	return "this account"
}
