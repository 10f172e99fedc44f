package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/solution"
)

// Registries keeps the providers' logins to container registries, with
// which the images of their own solutions are pulled: the single-host
// controller seals them in the store, the Kubernetes backend keeps them
// in a Secret per owner. owner is the caller's provider, "" for the
// admins; no one reads or uses another owner's logins.
type Registries interface {
	LoginRegistry(ctx context.Context, owner, host, username string, password []byte, by string) (*solution.RegistryLogin, error)
	RegistryLogins(ctx context.Context, owner string) ([]solution.RegistryLogin, error)
	LogoutRegistry(ctx context.Context, owner, host string) error
}

// RegistryLoginRequest is the body of PUT /api/v1/registries/{host}.
type RegistryLoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (a *API) registries() (Registries, error) {
	r, ok := a.ctl.(Registries)
	if !ok {
		return nil, &statusError{status: http.StatusNotImplemented, msg: "this aim keeps no registry logins"}
	}
	return r, nil
}

// loginOwner is whose logins the caller manages: its provider's, or the
// admins' (which pull the images of the solutions the admins own).
func loginOwner(c caller) string {
	if c.id.Role == auth.Provider {
		return c.id.Provider
	}
	return ""
}

// registryHost is the {host} of the request, checked.
func registryHost(r *http.Request) (string, error) {
	h, err := registry.ParseHost(r.PathValue("host"))
	if err != nil {
		return "", &statusError{status: http.StatusBadRequest, msg: "registry host: " + err.Error()}
	}
	return h, nil
}

func (a *API) putRegistryLogin(w http.ResponseWriter, r *http.Request, g *grant) {
	reg, err := a.registries()
	if err != nil {
		a.fail(w, err)
		return
	}
	host, err := registryHost(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	var req RegistryLoginRequest
	if err := readJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	switch {
	case strings.TrimSpace(req.Username) == "":
		writeError(w, http.StatusBadRequest, "a registry login needs a username")
		return
	case req.Password == "":
		writeError(w, http.StatusBadRequest, "a registry login needs a password (or a token the registry takes as one)")
		return
	case len(req.Password) > MaxSecret:
		writeError(w, http.StatusRequestEntityTooLarge, "a registry password is at most 64 KiB")
		return
	}
	l, err := reg.LoginRegistry(r.Context(), loginOwner(g.caller), host, req.Username, []byte(req.Password), who(g.caller))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (a *API) listRegistryLogins(w http.ResponseWriter, r *http.Request, g *grant) {
	reg, err := a.registries()
	if err != nil {
		a.fail(w, err)
		return
	}
	list, err := reg.RegistryLogins(r.Context(), loginOwner(g.caller))
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []solution.RegistryLogin{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"registries": list})
}

func (a *API) deleteRegistryLogin(w http.ResponseWriter, r *http.Request, g *grant) {
	reg, err := a.registries()
	if err != nil {
		a.fail(w, err)
		return
	}
	host, err := registryHost(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := reg.LogoutRegistry(r.Context(), loginOwner(g.caller), host); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
