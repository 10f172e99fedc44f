package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/spec"
)

// Guard checks the credentials of requests for private solutions. aim
// serve's checks the store itself; the gateway in a cluster asks aim's
// API. Both cache what they learn briefly, since every request to a
// private solution asks.
type Guard interface {
	// Token returns the identity behind a personal access token sent in
	// TokenHeader. An invalid, expired or revoked token is an error.
	Token(ctx context.Context, secret string) (auth.Identity, error)
	// Session returns the identity of a per-solution session
	// (SolutionCookie) for solution; one for another solution, or ended,
	// is an error.
	Session(ctx context.Context, secret, solution string) (auth.Identity, error)
	// Redeem exchanges the one-time code the platform's sign-in handed
	// over for a new per-solution session of solution: its secret and how
	// long it lasts.
	Redeem(ctx context.Context, code, solution string) (secret string, maxAge time.Duration, err error)
	// SignInURL is the platform's page that signs a browser in and hands
	// it back to solution's returnTo (a path and query) with a code.
	SignInURL(solution, returnTo string) string
}

// admit decides a request for a private solution before anything wakes it
// or holds it, and answers the request itself when it may not pass (or
// when it is the sign-in hand-over). It reports whether the request goes
// on to the solution.
func (g *Gateway) admit(w http.ResponseWriter, r *http.Request, rt *route, snap *snapshot) bool {
	if !snap.private {
		return true
	}
	// Nothing a refused request brings may reach the solution, and nothing
	// a solution's page sends lets it see aim's credentials: stripped below
	// whatever the outcome.
	guard := g.cfg.Guard
	if guard == nil {
		rt.stats.refuse(refusedAuth)
		g.errorPage(w, r, http.StatusForbidden, snap.title+" is private",
			"This aim has no sign-in configured, so no one can reach its private solutions.", 0)
		return false
	}
	if r.URL.Path == SignInPath {
		g.handOver(w, r, rt, snap, guard)
		return false
	}
	id, status, why := g.identify(r, rt.name, guard)
	switch {
	case status == http.StatusUnauthorized && wantsHTML(r):
		// A browser with no session here: the platform signs it in (or
		// finds its session there) and sends it back with a code.
		http.Redirect(w, r, guard.SignInURL(rt.name, r.URL.RequestURI()), http.StatusFound)
		return false
	case status != 0:
		rt.stats.refuse(refusedAuth)
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `AimToken realm="aim", header="`+TokenHeader+`"`)
		}
		g.errorPage(w, r, status, snap.title+" is private", why, 0)
		return false
	case !auth.AdmitsPrivate(id, snap.owner, snap.access):
		rt.stats.refuse(refusedAuth)
		who := id.Email
		if who == "" {
			who = "this identity"
		}
		g.errorPage(w, r, http.StatusForbidden, snap.title+" is private",
			"It is open to the people its provider chose, and "+who+" is not among them. Ask the provider for access.", 0)
		return false
	}
	return true
}

// identify finds who a request for a private solution comes from: a
// personal access token first (API clients), then the solution's own
// session cookie (browsers). status is 0 for an identity, else 401 with
// why.
func (g *Gateway) identify(r *http.Request, name string, guard Guard) (id auth.Identity, status int, why string) {
	if tok := r.Header.Get(TokenHeader); tok != "" {
		id, err := guard.Token(r.Context(), tok)
		if err != nil {
			return id, http.StatusUnauthorized, "The token in " + TokenHeader + " is not valid: " + err.Error() + "."
		}
		return id, 0, ""
	}
	if c, err := r.Cookie(SolutionCookie); err == nil && c.Value != "" {
		if id, err := guard.Session(r.Context(), c.Value, name); err == nil {
			return id, 0, ""
		}
	}
	return id, http.StatusUnauthorized, "Sign in to use it: a browser is sent to sign in; an API client sends a personal access token in the " + TokenHeader + " header."
}

// handOver turns the platform's one-time code into this solution's
// host-only session cookie and sends the browser on to where it was
// going. A code is good once, for this solution only, for a minute.
func (g *Gateway) handOver(w http.ResponseWriter, r *http.Request, rt *route, snap *snapshot, guard Guard) {
	q := r.URL.Query()
	secret, maxAge, err := guard.Redeem(r.Context(), q.Get("code"), rt.name)
	if err != nil {
		rt.stats.refuse(refusedAuth)
		status := http.StatusBadRequest
		if errors.Is(err, context.Canceled) {
			status = 499
		}
		g.errorPage(w, r, status, "Sign-in did not complete",
			"The sign-in link was used already, has expired, or is not for "+snap.title+". Open the solution again to sign in anew.", 0)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: SolutionCookie, Value: secret, Path: "/", MaxAge: int(maxAge.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, LocalPath(q.Get("return")), http.StatusSeeOther)
}

// LocalPath keeps a return address on this host: a path, never a URL
// or a scheme-relative "//host" that would send the browser elsewhere.
// The sign-in's hand-off checks its return address with it too.
func LocalPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// privateRoute is what a RouteSpec says of a private solution.
type privateRoute struct {
	private bool
	owner   string
	access  spec.Access
}
