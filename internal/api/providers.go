package api

import (
	"net/http"
	"slices"
	"time"

	"github.com/aimhub/aim/internal/store"
)

// ProviderInfo is a provider as the API shows it.
type ProviderInfo struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName,omitempty"`
	Email       string    `json:"email,omitempty"`
	Webhook     string    `json:"webhook,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

func providerInfo(p *store.Provider) ProviderInfo {
	return ProviderInfo{Name: p.Name, DisplayName: p.DisplayName, Email: p.Email, Webhook: p.Webhook, CreatedAt: p.CreatedAt}
}

// ProviderRequest is the body of PUT /api/v1/providers/{name}, which
// creates the provider or replaces its details; an empty body makes one
// with none.
type ProviderRequest struct {
	DisplayName string `json:"displayName,omitempty"`
	// Email is whom to write to about the provider's solutions.
	Email string `json:"email,omitempty"`
	// Webhook is an http(s) URL told of events on its solutions.
	Webhook string `json:"webhook,omitempty"`
}

func (a *API) listProviders(w http.ResponseWriter, r *http.Request, _ *grant) {
	ps, err := a.providers.ListProviders(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]ProviderInfo, 0, len(ps))
	for i := range ps {
		out = append(out, providerInfo(&ps[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

func (a *API) getProvider(w http.ResponseWriter, r *http.Request, _ *grant) {
	p, err := a.providers.GetProvider(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, providerInfo(p))
}

func (a *API) putProvider(w http.ResponseWriter, r *http.Request, _ *grant) {
	var req ProviderRequest
	if err := readJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	p := &store.Provider{Name: r.PathValue("name"), DisplayName: req.DisplayName, Email: req.Email, Webhook: req.Webhook}
	if err := a.providers.PutProvider(r.Context(), p); err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, providerInfo(p))
}

// deleteProvider removes a provider with its tokens, refusing while it
// owns solutions. The controller is asked as well as the store: on
// Kubernetes the Solutions, not the store, record their owners.
func (a *API) deleteProvider(w http.ResponseWriter, r *http.Request, _ *grant) {
	name := r.PathValue("name")
	var owned []string
	for _, info := range a.ctl.List(r.Context()) {
		if info.Owner == name {
			owned = append(owned, info.Name)
		}
	}
	if len(owned) > 0 {
		slices.Sort(owned)
		a.fail(w, &store.InUseError{Provider: name, Solutions: owned})
		return
	}
	if err := a.providers.DeleteProvider(r.Context(), name); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
