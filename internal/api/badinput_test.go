package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/store"
)

// TestBadMarketInput is AC6 of issue 14 at the API: a webhook that is no
// http(s) URL or points at loopback or link-local addresses, and
// inquiries with a bad e-mail or a 1 MB message, each get a clear error,
// and nothing of them is kept.
func TestBadMarketInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			w := newWorld(t, b.dsn(t))
			a := newAPI(t, fixtures(t), w.st)
			ctx := context.Background()
			for _, tc := range []struct{ webhook, msg string }{
				{"ftp://hooks.example.com/aim", "is not an http(s) URL"},
				{"file:///etc/passwd", "is not an http(s) URL"},
				{"http://127.0.0.1:9000/hook", "loopback"},
				{"http://[::1]/hook", "loopback"},
				{"http://localhost/hook", "points at this machine"},
				{"http://169.254.169.254/latest/meta-data", "link-local"},
				{"http://[fe80::1]/hook", "link-local"},
			} {
				rec := call(t, a, "PUT", "/api/v1/providers/acme/webhook", w.secrets["acme"], strings.NewReader(`{"webhook": "`+tc.webhook+`"}`), "application/json")
				if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), tc.msg) {
					t.Errorf("webhook %s: %d %s, want 422 saying %q", tc.webhook, rec.Code, rec.Body, tc.msg)
				}
			}
			if p, err := w.st.GetProvider(ctx, "acme"); err != nil || p.Webhook != "" {
				t.Errorf("a refused webhook was kept: %+v %v", p, err)
			}

			big := strings.Repeat("a", 1<<20)
			for _, tc := range []struct {
				name, body string
				status     int
				msg        string
			}{
				{"an address that is none", `{"name": "Ann", "email": "ann at example", "message": "Hello"}`, 422,
					`email: \"ann at example\" is not an e-mail address like name@example.com`},
				{"a header in the address", `{"name": "Ann", "email": "ann@example.com\r\nBcc: x@example.com", "message": "Hello"}`, 422, "email:"},
				{"a 1 MB message", `{"name": "Ann", "email": "ann@example.com", "message": "` + big + `"}`, 400, "at most 64 KiB"},
				{"a message over the limit", `{"name": "Ann", "email": "ann@example.com", "message": "` + big[:6000] + `"}`, 422,
					"message: is 6000 characters; at most 5000"},
			} {
				rec := call(t, a, "POST", "/api/v1/solutions/acme-public/inquiries", "", strings.NewReader(tc.body), "application/json")
				if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.msg) {
					t.Errorf("%s: %d %.300s, want %d saying %q", tc.name, rec.Code, rec.Body, tc.status, tc.msg)
				}
			}
			if qs, err := w.st.ListInquiries(ctx, store.InquiryFilter{}); err != nil || len(qs) != 0 {
				t.Errorf("refused inquiries were kept: %d %v", len(qs), err)
			}
		})
	}
}
