package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/store"
)

// History lists a solution's generations, newest first.
func (c *Client) History(ctx context.Context, name string) ([]api.GenerationView, error) {
	var out struct {
		Generations []api.GenerationView `json:"generations"`
	}
	err := c.getJSON(ctx, "/api/v1/solutions/"+url.PathEscape(name)+"/history", &out)
	return out.Generations, err
}

// Rollback serves generation to of a solution again (0: the one before
// the current).
func (c *Client) Rollback(ctx context.Context, name string, to int64) (*api.RollbackResult, error) {
	p := "/api/v1/solutions/" + url.PathEscape(name) + "/rollback"
	if to > 0 {
		p += "?to=" + url.QueryEscape(itoa(to))
	}
	var out api.RollbackResult
	return &out, c.sendJSON(ctx, http.MethodPost, p, nil, &out)
}

// Usage returns a solution's usage per day since a duration ago ("30d").
func (c *Client) Usage(ctx context.Context, name, since string) ([]store.UsageDay, error) {
	var out struct {
		Days []store.UsageDay `json:"days"`
	}
	err := c.getJSON(ctx, "/api/v1/solutions/"+url.PathEscape(name)+"/usage?since="+url.QueryEscape(since), &out)
	return out.Days, err
}

// Inquiries lists the inquiries the caller may read, of one solution
// when name is set.
func (c *Client) Inquiries(ctx context.Context, name string) ([]api.InquiryView, error) {
	var out struct {
		Inquiries []api.InquiryView `json:"inquiries"`
	}
	p := "/api/v1/inquiries"
	if name != "" {
		p += "?solution=" + url.QueryEscape(name)
	}
	err := c.getJSON(ctx, p, &out)
	return out.Inquiries, err
}

// Inquire sends an inquiry about a solution.
func (c *Client) Inquire(ctx context.Context, name string, f inquiry.Form) error {
	return c.sendJSON(ctx, http.MethodPost, "/api/v1/solutions/"+url.PathEscape(name)+"/inquiries", f, nil)
}

// SetWebhook sets a provider's webhook and returns the secret its
// deliveries are signed with.
func (c *Client) SetWebhook(ctx context.Context, provider, webhook string, rotate bool) (*api.WebhookAnswer, error) {
	var out api.WebhookAnswer
	body := map[string]any{"webhook": webhook, "rotateSecret": rotate}
	return &out, c.sendJSON(ctx, http.MethodPut, "/api/v1/providers/"+url.PathEscape(provider)+"/webhook", body, &out)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
