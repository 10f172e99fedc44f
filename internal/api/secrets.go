package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// Secrets keeps solutions' secrets: the single-host controller seals them
// in the store, the Kubernetes backend keeps them in a Secret. owner is
// whom authorizeDeploy decided the solution belongs to: a secret set for
// a name before its first deploy is its setter's only.
type Secrets interface {
	SetSecret(ctx context.Context, name, owner, key string, value []byte, by string) (*solution.SecretChange, error)
	ListSecrets(ctx context.Context, name, owner string) ([]solution.Secret, error)
	DeleteSecret(ctx context.Context, name, owner, key string) error
}

// MaxSecret bounds a secret's value: a key or a password, not a file of
// data (a Kubernetes Secret holds 1 MiB in all).
const MaxSecret = 64 << 10

func (a *API) secrets() (Secrets, error) {
	s, ok := a.ctl.(Secrets)
	if !ok {
		return nil, &statusError{status: http.StatusNotImplemented, msg: "this aim keeps no secrets"}
	}
	return s, nil
}

// putSecret takes the value as the request's body, as it is (no JSON, no
// trailing newline removed: the CLI decides that). The answer names the
// components restarted to take it, never the value.
func (a *API) putSecret(w http.ResponseWriter, r *http.Request, g *grant) {
	sec, err := a.secrets()
	if err != nil {
		a.fail(w, err)
		return
	}
	key := r.PathValue("key")
	if err := spec.ValidSecretName(key); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	val, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSecret))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a secret's value is at most %d bytes", MaxSecret))
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(val) == 0 {
		writeError(w, http.StatusBadRequest, "the secret's value is empty; to remove a secret, use aim secret rm")
		return
	}
	// A restart outlives the request, as a deploy does.
	ch, err := sec.SetSecret(context.WithoutCancel(r.Context()), r.PathValue("name"), g.owner, key, val, who(g.caller))
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ch)
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request, g *grant) {
	sec, err := a.secrets()
	if err != nil {
		a.fail(w, err)
		return
	}
	list, err := sec.ListSecrets(r.Context(), r.PathValue("name"), g.owner)
	if err != nil {
		a.fail(w, err)
		return
	}
	if list == nil {
		list = []solution.Secret{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"secrets": list})
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request, g *grant) {
	sec, err := a.secrets()
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := sec.DeleteSecret(r.Context(), r.PathValue("name"), g.owner, r.PathValue("key")); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkSecrets refuses a deploy of m whose environment names a secret
// that owner has not set for it, located in data, the uploaded aim.yaml.
func (a *API) checkSecrets(ctx context.Context, m *spec.Manifest, data []byte, owner string) error {
	if len(m.Secrets()) == 0 {
		return nil
	}
	have := map[string]bool{}
	if sec, err := a.secrets(); err == nil {
		list, err := sec.ListSecrets(ctx, m.Name, owner)
		if err != nil {
			return err
		}
		for _, s := range list {
			have[s.Name] = true
		}
	}
	return spec.CheckSecrets(spec.FileName, data, m, func(n string) bool { return have[n] })
}
