// Package logincheck tries a registry login before aim keeps it. It is
// apart from package registry, which the API and the CLI import, because
// go-containerregistry's authn links Docker's CLI configuration, which
// only the runtimes may (test/repo's TestNoDockerAboveTheRuntimes).
package logincheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Checker tries a login against its registry before it is kept, as
// `docker login` does: the registry's /v2/ is asked for its challenge,
// which is answered with the login (Basic, or a Bearer token fetched
// from the realm it names), and /v2/ must then answer 200. Only HTTPS,
// but to the hosts in Insecure, which are tried over plain HTTP too: a
// request in plain HTTP anywhere else (a private address's registry, a
// token realm or a redirect to http://) is refused before it is sent, so
// a password never goes out in clear unless the operator said so.
type Checker struct {
	// Insecure are the hosts (as registry.ParseHost gives them) whose registries
	// serve plain HTTP.
	Insecure []string
	// Transport; nil means a clone of http.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds one check; zero means 30 s.
	Timeout time.Duration
}

// Check tries l. A registry that refuses it is an error wrapping
// ErrUnauthorized; one that cannot be reached or asked, another error.
// Neither carries what the registry answered beyond its status and
// error codes: the host is the caller's to name, and what answers there
// is not theirs to read.
func (c *Checker) Check(ctx context.Context, l registry.Login) error {
	insecure := slices.Contains(c.Insecure, l.Host)
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(l.Host, opts...)
	if err != nil {
		return fmt.Errorf("registry %s: %w", l.Host, err)
	}
	inner := c.Transport
	if inner == nil {
		inner = http.DefaultTransport.(*http.Transport).Clone()
	}
	rt := httpsOnly{insecure: c.Insecure, inner: inner}
	d := c.Timeout
	if d == 0 {
		d = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	auth := authn.FromConfig(authn.AuthConfig{Username: l.Username, Password: l.Password})
	t, err := transport.NewWithContext(ctx, reg, auth, rt, nil)
	if err != nil {
		return answered(l.Host, err)
	}
	// The scheme is the one the ping found: t sets it for the registry.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return answered(l.Host, err)
	}
	defer resp.Body.Close()
	return answered(l.Host, transport.CheckError(resp, http.StatusOK))
}

// answered words err, from asking registry host, for the one who named
// it: a refusal wraps ErrUnauthorized; a registry's answer is its status
// and error codes, never its body.
func answered(host string, err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("asking registry %s: %w", host, err)
	}
	var codes []string
	for _, d := range te.Errors {
		codes = append(codes, string(d.Code))
	}
	what := fmt.Sprintf("%d %s", te.StatusCode, http.StatusText(te.StatusCode))
	if len(codes) > 0 {
		what += " (" + strings.Join(codes, ", ") + ")"
	}
	if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
		return fmt.Errorf("registry %s refused the login: %s: %w", host, what, registry.ErrUnauthorized)
	}
	return fmt.Errorf("registry %s answered %s", host, what)
}

// httpsOnly refuses requests in plain HTTP but to the insecure hosts.
type httpsOnly struct {
	insecure []string
	inner    http.RoundTripper
}

func (h httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && !slices.Contains(h.insecure, strings.ToLower(r.URL.Host)) {
		return nil, fmt.Errorf("not sending a login in plain HTTP to %s: it is not one of the registries the operator names as insecure", r.URL.Host)
	}
	return h.inner.RoundTrip(r)
}
