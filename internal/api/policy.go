package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// need is the rule a route is registered with: who may call it. authorize
// is the one function that applies them; handlers receive what it let
// through.
type need int

const (
	// anyone, anonymous visitors included. What the answer shows still
	// depends on the caller (listed, view).
	anyone need = iota
	// admitted: {name} is a solution the caller may reach (auth.Admits).
	// A private one it may not is answered 404, as if it did not exist.
	admitted
	// manager: the caller manages {name} (auth.Manages on its owner):
	// 401 for an anonymous caller, 404 for a private solution it may not
	// reach, else 403.
	manager
	// deployer: the caller may deploy {name} (auth.MayDeployAs): a
	// provider claims a new name or updates its own; an admin anything.
	deployer
	// admin: the admins only.
	admin
	// tokenHolder: an admin, or a provider for its own tokens (the
	// handler narrows to them, with tokenScope and mayIssue).
	tokenHolder
	// tokenManager: an admin, or the provider token {id} belongs to; a
	// provider asking for another's token is answered 404.
	tokenManager
	// providerSelf: an admin, or the provider {name} itself.
	providerSelf
	// keeper: as manager while {name} exists; once it is removed, the
	// caller manages the owner its kept volumes record (others get 404).
	keeper
)

// route is one endpoint of the API and the rule that guards it.
type route struct {
	// pattern is the ServeMux pattern, "METHOD /path".
	pattern string
	need    need
	// what says what the call does, for refusals; {name} and {id} are
	// the path's.
	what   string
	handle func(w http.ResponseWriter, r *http.Request, g *grant)
}

// grant is what authorize let through, for the handler.
type grant struct {
	caller
	// sol is the solution {name} names, for the routes on one.
	sol *solution.Info
	// owner is whom a deploy's solution belongs to, as decided: the
	// stored owner for an update, the claiming provider or the admins'
	// choice for a new name.
	owner string
}

// authorize applies rt's rule to c's request.
func (a *API) authorize(r *http.Request, c caller, rt route) (*grant, error) {
	what := strings.NewReplacer("{name}", r.PathValue("name"), "{id}", r.PathValue("id")).Replace(rt.what)
	g := &grant{caller: c}
	switch rt.need {
	case anyone:
		return g, nil
	case admin:
		if !c.id.IsAdmin() {
			return nil, needs(c, what, "an admin token")
		}
		return g, nil
	case tokenHolder:
		if !c.id.IsAdmin() && c.id.Role != auth.Provider {
			return nil, needs(c, what, "a provider or an admin token")
		}
		return g, nil
	case tokenManager:
		return a.authorizeToken(r, c, what)
	case providerSelf:
		if !c.id.IsAdmin() && !(c.id.Role == auth.Provider && c.id.Provider == r.PathValue("name")) {
			return nil, needs(c, what, "that provider's token or an admin token")
		}
		return g, nil
	case admitted, manager:
		return a.authorizeSolution(r, c, rt.need, what)
	case keeper:
		return a.authorizeKeeper(r, c, what)
	case deployer:
		return a.authorizeDeploy(r, c, what)
	}
	return nil, fmt.Errorf("route %s has no rule", rt.pattern)
}

// needs refuses c a call that needs role: 401 when c presented no
// credential, else 403, saying what c's credential is.
func needs(c caller, what, role string) error {
	if c.id.Anonymous() {
		return &statusError{status: http.StatusUnauthorized, challenge: `Bearer realm="aim"`,
			msg: fmt.Sprintf("%s needs %s; the request carried none: pass it as 'Authorization: Bearer <token>'", what, role)}
	}
	return &statusError{status: http.StatusForbidden, challenge: `Bearer realm="aim", error="insufficient_scope"`,
		msg: fmt.Sprintf("%s needs %s; yours is %s", what, role, describe(c))}
}

// describe says what c's credential is, to c itself.
func describe(c caller) string {
	s := "none"
	switch c.id.Role {
	case auth.Admin:
		s = "an admin token"
	case auth.Provider:
		s = "a provider token for " + c.id.Provider
	case auth.Visitor:
		s = "a visitor token"
		if c.id.Email != "" {
			s += " for " + c.id.Email
		}
	}
	if c.token != nil && c.token.Name != "" {
		s += fmt.Sprintf(" (%q)", c.token.Name)
	}
	return s
}

func notFound(name string) error { return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound) }

// authorizeSolution applies admitted and manager to the solution {name}.
func (a *API) authorizeSolution(r *http.Request, c caller, n need, what string) (*grant, error) {
	name := r.PathValue("name")
	if n == manager && c.id.Anonymous() {
		return nil, needs(c, what, "the token of the provider it belongs to, or an admin token")
	}
	info, err := a.ctl.Get(r.Context(), name)
	if errors.Is(err, solution.ErrNotFound) || errors.Is(err, runtime.ErrNotFound) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, err
	}
	if !admits(c.id, info) {
		// The same answer as for a name no one holds: a private
		// solution's existence is its admitted people's to know.
		return nil, notFound(name)
	}
	if n == manager && !c.id.Manages(info.Owner) {
		return nil, needs(c, what, "the token of the provider it belongs to, or an admin token")
	}
	return &grant{caller: c, sol: info}, nil
}

// authorizeDeploy applies deployer to {name} and decides whom the solution
// belongs to. ?owner=NAME lets an admin deploy a new name for a provider.
// A deploy never changes an existing solution's owner.
func (a *API) authorizeDeploy(r *http.Request, c caller, what string) (*grant, error) {
	name := r.PathValue("name")
	if c.id.Role != auth.Admin && c.id.Role != auth.Provider {
		return nil, needs(c, what, "a provider or an admin token")
	}
	info, err := a.ctl.Get(r.Context(), name)
	exists := err == nil
	if err != nil && !errors.Is(err, solution.ErrNotFound) && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err
	}
	owner := ""
	if exists {
		owner = info.Owner
	}
	if !c.id.MayDeployAs(owner, exists) {
		// Not which provider, nor anything of theirs; for a private
		// solution this does tell that the name is taken, which a
		// solution's subdomain tells anyway.
		return nil, &statusError{status: http.StatusForbidden, challenge: `Bearer realm="aim", error="insufficient_scope"`,
			msg: (&solution.OwnedError{Name: name}).Error()}
	}
	q := r.URL.Query()
	want, asked := q.Get("owner"), q.Has("owner")
	switch {
	case asked && !c.id.IsAdmin() && want != c.id.Provider:
		return nil, &statusError{status: http.StatusForbidden,
			msg: fmt.Sprintf("owner: %q: a provider deploys for itself only (yours is %s); deploying for another provider needs an admin token", want, describe(c))}
	case exists:
		if asked && want != owner {
			return nil, &statusError{status: http.StatusConflict,
				msg: fmt.Sprintf("owner: solution %s belongs to %s, and a deploy does not change whom a solution belongs to: remove it first", name, ownerName(owner))}
		}
	case c.id.Role == auth.Provider:
		owner = c.id.Provider
	case want != "":
		if _, err := a.providers.GetProvider(r.Context(), want); errors.Is(err, store.ErrNotFound) {
			return nil, &statusError{status: http.StatusUnprocessableEntity,
				msg: fmt.Sprintf("owner: provider %q does not exist: add it first (aim provider add %s)", want, want)}
		} else if err != nil {
			return nil, err
		}
		owner = want
	}
	return &grant{caller: c, owner: owner}, nil
}

func ownerName(owner string) string {
	if owner == "" {
		return "the admins"
	}
	return "provider " + owner
}

// authorizeToken applies tokenManager to the token {id}.
func (a *API) authorizeToken(r *http.Request, c caller, what string) (*grant, error) {
	if c.id.IsAdmin() {
		return &grant{caller: c}, nil
	}
	if c.id.Role != auth.Provider {
		return nil, needs(c, what, "the token of its provider, or an admin token")
	}
	id := r.PathValue("id")
	own, err := a.tokens.ListTokens(r.Context(), c.id.Provider)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(own, func(t store.Token) bool { return t.ID == id }) {
		// Another provider's token IDs are none of this one's business.
		return nil, fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return &grant{caller: c}, nil
}

// tokenScope is whose tokens c lists: everyone's for an admin (""), a
// provider's own.
func tokenScope(c caller) string {
	if c.id.IsAdmin() {
		return ""
	}
	return c.id.Provider
}

// mayIssue decides whether c may create t, filling in what a provider's
// request leaves out: a provider creates provider tokens for itself only,
// and none that outlives the token it asks with, so that a token that
// leaks cannot be turned into one that never expires.
func mayIssue(c caller, t *store.Token) error {
	if c.id.IsAdmin() {
		return nil
	}
	if t.Role == "" {
		t.Role = store.RoleProvider
	}
	if t.Provider == "" && t.Role == store.RoleProvider {
		t.Provider = c.id.Provider
	}
	if t.Role != store.RoleProvider || t.Provider != c.id.Provider {
		return &statusError{status: http.StatusForbidden, challenge: `Bearer realm="aim", error="insufficient_scope"`,
			msg: fmt.Sprintf("a provider creates provider tokens for itself only: creating %s needs an admin token; yours is %s", tokenKind(t), describe(c))}
	}
	if c.token == nil {
		return nil
	}
	if lim := c.token.ExpiresAt; !lim.IsZero() {
		if t.ExpiresAt.IsZero() {
			t.ExpiresAt = lim
		} else if t.ExpiresAt.After(lim) {
			return &statusError{status: http.StatusForbidden,
				msg: fmt.Sprintf("expires: a token cannot outlive the token that creates it, and yours expires at %s", lim.UTC().Format("2006-01-02 15:04 MST"))}
		}
	}
	return nil
}

// tokenKind says what kind of token t is, as a sentence's object.
func tokenKind(t *store.Token) string {
	switch t.Role {
	case store.RoleAdmin:
		return "an admin token"
	case store.RoleProvider:
		return "a provider token for " + t.Provider
	}
	return "a " + string(t.Role) + " token"
}

// admits is auth.Admits on what the API knows of a solution. A solution
// whose manifest a backend could not read is treated as private to its
// managers: refusing too much is the safe mistake.
func admits(id auth.Identity, info *solution.Info) bool {
	if info.Manifest == nil {
		return id.Manages(info.Owner)
	}
	return auth.Admits(id, info.Owner, info.Manifest)
}

// listed is auth.Lists on what the API knows of a solution.
func listed(id auth.Identity, info *solution.Info) bool {
	if info.Manifest == nil {
		return id.Manages(info.Owner)
	}
	return auth.Lists(id, info.Owner, info.Manifest)
}

// Hidden replaces what the API does not show to those who do not manage a
// solution, such as its components' environment values.
const Hidden = "(hidden)"

// view is info as id may see it. Those who manage the solution see all of
// it. Everyone else sees its manifest with each component's environment
// keys but not their values (which often hold keys and passwords), no
// access list (who else may reach a private solution is its provider's
// business), no owner, and for a failed solution not why it failed (a
// failed start quotes the component's last output, which is its logs').
func view(id auth.Identity, info *solution.Info) *solution.Info {
	if id.Manages(info.Owner) {
		return info
	}
	v := *info
	v.Owner = ""
	if v.State == solution.Failed && v.Reason != "" {
		v.Reason = "the last deploy failed; its provider and the admins see why"
	}
	if m := info.Manifest; m != nil {
		rm := *m
		rm.Access = spec.Access{}
		rm.Components = slices.Clone(m.Components)
		for i := range rm.Components {
			env := maps.Clone(rm.Components[i].Env)
			for k := range env {
				env[k] = spec.Plain(Hidden)
			}
			rm.Components[i].Env = env
		}
		v.Manifest = &rm
	}
	return &v
}

// authorizeKeeper applies keeper: a removed solution's volumes are still
// its owner's, and nobody else's to see exist.
func (a *API) authorizeKeeper(r *http.Request, c caller, what string) (*grant, error) {
	g, err := a.authorizeSolution(r, c, manager, what)
	if !errors.Is(err, solution.ErrNotFound) {
		return g, err
	}
	vc, ok := a.ctl.(Volumes)
	if !ok {
		return nil, err
	}
	vs, verr := vc.Volumes(r.Context(), r.PathValue("name"))
	if verr != nil || len(vs) == 0 || !c.id.Manages(vs[0].Owner) {
		return nil, err
	}
	return &grant{caller: c}, nil
}
