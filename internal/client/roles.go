package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/aimhub/aim/internal/api"
)

// sendJSON sends v as a JSON body and decodes the answer into out, when
// out is not nil.
func (c *Client) sendJSON(ctx context.Context, method, path string, v, out any) error {
	var body io.Reader
	ct := ""
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Me says who the client's token stands for; without one, an anonymous
// visitor (an empty role).
func (c *Client) Me(ctx context.Context) (*api.Me, error) {
	var me api.Me
	return &me, c.getJSON(ctx, "/api/v1/me", &me)
}

// Providers lists the providers.
func (c *Client) Providers(ctx context.Context) ([]api.ProviderInfo, error) {
	var out struct {
		Providers []api.ProviderInfo `json:"providers"`
	}
	err := c.getJSON(ctx, "/api/v1/providers", &out)
	return out.Providers, err
}

// PutProvider creates the provider name or replaces its details.
func (c *Client) PutProvider(ctx context.Context, name string, p api.ProviderRequest) (*api.ProviderInfo, error) {
	var out api.ProviderInfo
	return &out, c.sendJSON(ctx, http.MethodPut, "/api/v1/providers/"+url.PathEscape(name), p, &out)
}

// DeleteProvider removes a provider and its tokens.
func (c *Client) DeleteProvider(ctx context.Context, name string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/api/v1/providers/"+url.PathEscape(name), nil, nil)
}

// Tokens lists the tokens the client may see: every one for an admin, a
// provider's own.
func (c *Client) Tokens(ctx context.Context) ([]api.TokenInfo, error) {
	var out struct {
		Tokens []api.TokenInfo `json:"tokens"`
	}
	err := c.getJSON(ctx, "/api/v1/tokens", &out)
	return out.Tokens, err
}

// CreateToken makes a token; the answer holds its secret, this once.
func (c *Client) CreateToken(ctx context.Context, req api.TokenRequest) (*api.NewToken, error) {
	var out api.NewToken
	return &out, c.sendJSON(ctx, http.MethodPost, "/api/v1/tokens", req, &out)
}

// RevokeToken stops a token from working.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	return c.sendJSON(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil)
}
