package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// RegistryStore keeps the providers' registry logins, sealed; *store.Store
// is one.
type RegistryStore interface {
	PutRegistryLogin(ctx context.Context, l *store.RegistryLogin) error
	ListRegistryLogins(ctx context.Context, owner string) ([]store.RegistryLogin, error)
	PrivateHosts(ctx context.Context) (map[string]bool, error)
	DeleteRegistryLogin(ctx context.Context, owner, host string) error
}

var _ RegistryStore = (*store.Store)(nil)

// loginChecker is a Builder that can try a login before it is kept
// (*docker.Docker is one).
type loginChecker interface {
	CheckLogin(ctx context.Context, host, username, password string) error
}

var errNoLogins = errors.New("this aim keeps no registry logins (it has no secret key)")

// loginPlace is where a login's password is sealed: for its owner and
// host, so that a sealed password copied into another owner's row does
// not open there.
func loginPlace(owner, host string) []string { return []string{"registry login", owner, host} }

// LoginRegistry keeps owner's login to host, its password sealed, once
// the engine has tried it. It is used for the images of owner's
// solutions only.
func (c *Controller) LoginRegistry(ctx context.Context, owner, host, username string, password []byte, by string) (*solution.RegistryLogin, error) {
	if c.cfg.Registries == nil || c.cfg.SecretKey == nil {
		return nil, errNoLogins
	}
	h, err := registry.ParseHost(host)
	if err != nil {
		return nil, &solution.InputError{Msg: err.Error()}
	}
	if lc, ok := c.builder.(loginChecker); ok {
		if err := lc.CheckLogin(ctx, h, username, string(password)); err != nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("%v\nfix: check the user and the password (or token) for %s; nothing was kept", err, h)}
		}
	}
	l := &store.RegistryLogin{Owner: owner, Host: h, Username: username, Sealed: c.cfg.SecretKey.Seal(password, loginPlace(owner, h)...)}
	if err := c.cfg.Registries.PutRegistryLogin(ctx, l); err != nil {
		return nil, err
	}
	c.log.Info("registry login kept", "registry", h, "owner", owner, "by", by)
	return &solution.RegistryLogin{Host: h, Username: username, SetAt: l.SetAt}, nil
}

// RegistryLogins lists owner's logins, without their passwords.
func (c *Controller) RegistryLogins(ctx context.Context, owner string) ([]solution.RegistryLogin, error) {
	if c.cfg.Registries == nil {
		return nil, nil
	}
	ls, err := c.cfg.Registries.ListRegistryLogins(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make([]solution.RegistryLogin, 0, len(ls))
	for _, l := range ls {
		out = append(out, solution.RegistryLogin{Host: l.Host, Username: l.Username, SetAt: l.SetAt})
	}
	return out, nil
}

// LogoutRegistry removes owner's login to host. Images already pulled
// with it stay on the engine for the solutions that run them; the next
// deploy pulls afresh and is refused.
func (c *Controller) LogoutRegistry(ctx context.Context, owner, host string) error {
	if c.cfg.Registries == nil {
		return errNoLogins
	}
	h, err := registry.ParseHost(host)
	if err != nil {
		return &solution.InputError{Msg: err.Error()}
	}
	return c.cfg.Registries.DeleteRegistryLogin(ctx, owner, h)
}

// fetchImage makes sure the engine has ref for a solution of owner. An
// image of a registry someone has a login to is pulled afresh, with
// owner's login or none: the registry, not the engine's cache, decides
// whether owner may have it, so that naming another provider's private
// image gets nothing (a logout leaves the host private, see
// store.PrivateHosts). Others are used as the engine has them, or pulled
// anonymously.
func (c *Controller) fetchImage(ctx context.Context, owner, ref string, progress func(string)) error {
	host, err := registry.HostOf(ref)
	if err != nil {
		return &solution.InputError{Msg: err.Error()}
	}
	auth, private, err := c.pullAuth(ctx, owner, host)
	if err != nil {
		return err
	}
	if private {
		err = c.builder.PullImage(ctx, ref, auth, progress)
	} else {
		err = c.builder.EnsureImage(ctx, ref, progress)
	}
	if !errors.Is(err, registry.ErrUnauthorized) {
		return err
	}
	who := "the admins"
	if owner != "" {
		who = "provider " + owner
	}
	if auth == "" {
		return &solution.InputError{Msg: fmt.Sprintf("%v\nfix: registry %s wants a login, and %s has none: run `aim registry login %s --username USER --password-stdin` as %s, then deploy again", err, host, who, host, who)}
	}
	return &solution.InputError{Msg: fmt.Sprintf("%v\nfix: registry %s refused the login of %s: run `aim registry login %s` again with credentials that may pull this image", err, host, who, host)}
}

// ownBuilt refuses an image: reference to an image aim built (under
// ImagePrefix) that no generation of solution name ran: another
// solution's build, which naming it would otherwise hand over. A
// rollback names its own generation's images, and passes.
func (c *Controller) ownBuilt(ctx context.Context, name, ref string) error {
	if !strings.HasPrefix(ref, c.cfg.ImagePrefix+"/") {
		return nil
	}
	gens, err := c.store.ListGenerations(ctx, name, 0)
	if err != nil {
		return err
	}
	for _, g := range gens {
		for _, r := range g.Images {
			if r == ref {
				return nil
			}
		}
	}
	return &solution.InputError{Msg: fmt.Sprintf("%s is where aim keeps the images it builds, and %s is none of solution %s's: name an image of your own, or a build directory", c.cfg.ImagePrefix, ref, name)}
}

// pullAuth returns owner's login to host as the engine takes it (empty
// for none), and whether host is a registry anyone has, or had, a login to.
func (c *Controller) pullAuth(ctx context.Context, owner, host string) (auth string, private bool, err error) {
	if c.cfg.Registries == nil {
		return "", false, nil
	}
	hosts, err := c.cfg.Registries.PrivateHosts(ctx)
	if err != nil {
		return "", false, err
	}
	if !hosts[host] {
		return "", false, nil
	}
	ls, err := c.cfg.Registries.ListRegistryLogins(ctx, owner)
	if err != nil {
		return "", true, err
	}
	for _, l := range ls {
		if l.Host != host {
			continue
		}
		pw, err := c.cfg.SecretKey.Open(l.Sealed, loginPlace(owner, host)...)
		if err != nil {
			return "", true, fmt.Errorf("the login of %s to %s: %w", owner, host, err)
		}
		auth, err := registry.EngineAuth(registry.Login{Host: host, Username: l.Username, Password: string(pw)})
		return auth, true, err
	}
	return "", true, nil
}
