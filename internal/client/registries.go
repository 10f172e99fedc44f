package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/solution"
)

func registryPath(host string) string {
	p := "/api/v1/registries"
	if host != "" {
		p += "/" + url.PathEscape(host)
	}
	return p
}

// LoginRegistry keeps the caller's login to registry host, with which
// the images of the caller's solutions are pulled.
func (c *Client) LoginRegistry(ctx context.Context, host, username, password string) (*solution.RegistryLogin, error) {
	var out solution.RegistryLogin
	err := c.sendJSON(ctx, http.MethodPut, registryPath(host), api.RegistryLoginRequest{Username: username, Password: password}, &out)
	return &out, err
}

// RegistryLogins lists the caller's registry logins, without passwords.
func (c *Client) RegistryLogins(ctx context.Context) ([]solution.RegistryLogin, error) {
	var out struct {
		Registries []solution.RegistryLogin `json:"registries"`
	}
	return out.Registries, c.getJSON(ctx, registryPath(""), &out)
}

// LogoutRegistry removes the caller's login to host.
func (c *Client) LogoutRegistry(ctx context.Context, host string) error {
	return c.sendJSON(ctx, http.MethodDelete, registryPath(host), nil, nil)
}
