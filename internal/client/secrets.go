package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aimhub/aim/internal/solution"
)

func secretPath(name, key string) string {
	p := "/api/v1/solutions/" + url.PathEscape(name) + "/secrets"
	if key != "" {
		p += "/" + url.PathEscape(key)
	}
	return p
}

// SetSecret sets secret key of solution name to value, and says which
// components were restarted to take it.
func (c *Client) SetSecret(ctx context.Context, name, key string, value []byte) (*solution.SecretChange, error) {
	resp, err := c.do(ctx, http.MethodPut, secretPath(name, key), bytes.NewReader(value), "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ch solution.SecretChange
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	return &ch, nil
}

// Secrets lists the secrets of solution name: their names and when they
// were set.
func (c *Client) Secrets(ctx context.Context, name string) ([]solution.Secret, error) {
	var out struct {
		Secrets []solution.Secret `json:"secrets"`
	}
	if err := c.getJSON(ctx, secretPath(name, ""), &out); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// DeleteSecret removes secret key of solution name.
func (c *Client) DeleteSecret(ctx context.Context, name, key string) error {
	resp, err := c.do(ctx, http.MethodDelete, secretPath(name, key), nil, "")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
