package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// SecretStore keeps sealed secrets; *store.Store is one.
type SecretStore interface {
	PutSecret(ctx context.Context, sec *store.Secret) error
	ListSecrets(ctx context.Context, solution, owner string) ([]store.Secret, error)
	DeleteSecret(ctx context.Context, solution, owner, name string) error
}

var _ SecretStore = (*store.Store)(nil)

var errNoSecrets = errors.New("this aim keeps no secrets (it has no secret key)")

// A secret belongs to a solution's name and to its owner (the API's
// grant decides whom): secrets set for a name before its first deploy are
// the setter's, and reach the solution only if the setter deploys it.

// SetSecret seals value and keeps it as secret key of solution name for
// owner. When the serving solution is owner's and uses the secret, it is
// deployed again, as a new generation of the same images and manifest,
// so that its containers are created anew with the value; a failure
// leaves the previous generation serving, with the value it had.
func (c *Controller) SetSecret(ctx context.Context, name, owner, key string, value []byte, by string) (*solution.SecretChange, error) {
	if c.cfg.Secrets == nil || c.cfg.SecretKey == nil {
		return nil, errNoSecrets
	}
	if err := spec.ValidSecretName(key); err != nil {
		return nil, &solution.InputError{Msg: err.Error()}
	}
	sec := &store.Secret{Solution: name, Owner: owner, Name: key, Sealed: c.cfg.SecretKey.Seal(value, name, owner, key)}
	if err := c.cfg.Secrets.PutSecret(ctx, sec); err != nil {
		return nil, err
	}
	c.log.Info("secret set", "solution", name, "secret", key, "by", by)
	return c.restartFor(ctx, name, owner, key, by)
}

// DeleteSecret removes a secret. One that the serving solution uses is
// refused: its next container would fail to start.
func (c *Controller) DeleteSecret(ctx context.Context, name, owner, key string) error {
	if c.cfg.Secrets == nil {
		return errNoSecrets
	}
	if rec, err := c.store.Get(ctx, name); err == nil && rec.Owner == owner {
		if users := rec.Manifest.SecretUsers(key); len(users) > 0 {
			return &solution.InputError{Msg: fmt.Sprintf("secret %s is used by component %s of %s: deploy a manifest without `{secret: %s}` first, then remove it", key, users[0], name, key)}
		}
	}
	if err := c.cfg.Secrets.DeleteSecret(ctx, name, owner, key); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &solution.InputError{Msg: fmt.Sprintf("solution %s has no secret %s", name, key)}
		}
		return err
	}
	c.log.Info("secret removed", "solution", name, "secret", key)
	return nil
}

// ListSecrets lists owner's secrets of name, without their values.
func (c *Controller) ListSecrets(ctx context.Context, name, owner string) ([]solution.Secret, error) {
	if c.cfg.Secrets == nil {
		return nil, nil
	}
	secs, err := c.cfg.Secrets.ListSecrets(ctx, name, owner)
	if err != nil {
		return nil, err
	}
	var m *spec.Manifest
	if rec, err := c.store.Get(ctx, name); err == nil && rec.Owner == owner {
		m = rec.Manifest
	}
	out := make([]solution.Secret, 0, len(secs))
	for _, s := range secs {
		out = append(out, solution.Secret{Name: s.Name, SetAt: s.SetAt, UsedBy: m.SecretUsers(s.Name)})
	}
	return out, nil
}

// secretValues opens owner's secrets of name, for containers being
// created.
func (c *Controller) secretValues(ctx context.Context, name, owner string) (map[string]string, error) {
	if c.cfg.Secrets == nil || c.cfg.SecretKey == nil {
		return nil, errNoSecrets
	}
	secs, err := c.cfg.Secrets.ListSecrets(ctx, name, owner)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(secs))
	for _, s := range secs {
		v, err := c.cfg.SecretKey.Open(s.Sealed, name, owner, s.Name)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", s.Name, err)
		}
		out[s.Name] = string(v)
	}
	return out, nil
}

// restartFor deploys the serving generation of name again when it uses
// secret key, and says which components that restarted.
func (c *Controller) restartFor(ctx context.Context, name, owner, key, by string) (*solution.SecretChange, error) {
	rec, err := c.store.Get(ctx, name)
	if err != nil || rec.Owner != owner || rec.Generation == 0 {
		return &solution.SecretChange{}, nil
	}
	users := rec.Manifest.SecretUsers(key)
	if len(users) == 0 || rec.State == string(solution.Failed) {
		return &solution.SecretChange{}, nil
	}
	g, err := c.store.GetGeneration(ctx, name, rec.Generation)
	if err != nil {
		// No history of it (a store of before generations): the record
		// has what a redeploy needs.
		g = &store.Generation{Solution: name, Generation: rec.Generation, Manifest: rec.Manifest, Images: rec.Images}
	}
	if _, err := c.again(ctx, g, rec.SkipChecks, "secret "+key+" set by "+by, 0, nil); err != nil {
		return nil, fmt.Errorf("the secret is set, but %s could not be restarted with it: %w", name, err)
	}
	return &solution.SecretChange{Restarted: users}, nil
}
