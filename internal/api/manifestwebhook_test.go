package api

import (
	"bytes"
	"context"
	"mime/multipart"
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestWebhook: aim.yaml's provider.webhook sets the webhook of
// the provider the solution belongs to, with a signing secret, when that
// provider or an admin deploys; without one the provider's stays; a bad
// one is refused before anything is deployed or stored.
func TestManifestWebhook(t *testing.T) {
	cases := []struct {
		name, who, path, webhook string
		status                   int
		// want is the provider's webhook afterwards; says, what the
		// deploy's answer says.
		owner, want, says string
	}{
		{name: "the provider deploys", who: "acme", path: "/api/v1/solutions/fresh", webhook: "https://hooks.acme.example/aim", status: 200,
			owner: "acme", want: "https://hooks.acme.example/aim", says: "`aim provider webhook acme https://hooks.acme.example/aim` shows the signing secret"},
		{name: "an admin deploys for a provider", who: "admin", path: "/api/v1/solutions/fresh?owner=beta", webhook: "https://beta.example/hook", status: 200,
			owner: "beta", want: "https://beta.example/hook", says: "inquiries about beta's solutions go to https://beta.example/hook"},
		{name: "no webhook leaves the provider's", who: "acme", path: "/api/v1/solutions/fresh", status: 200,
			owner: "acme", want: "https://before.example/hook"},
		{name: "a loopback webhook", who: "acme", path: "/api/v1/solutions/fresh", webhook: "http://127.0.0.1:9000/hook", status: 422,
			owner: "acme", want: "https://before.example/hook", says: `aim.yaml:3: provider.webhook: webhook \"http://127.0.0.1:9000/hook\" points at 127.0.0.1, a loopback address aim never sends to`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
			ctx := context.Background()
			p, err := w.st.GetProvider(ctx, c.owner)
			if err != nil {
				t.Fatal(err)
			}
			p.Webhook = "https://before.example/hook"
			if err := w.st.PutProvider(ctx, p); err != nil {
				t.Fatal(err)
			}
			manifest := "name: fresh\nprovider:\n"
			if c.webhook != "" {
				manifest += "  webhook: " + c.webhook + "\n"
			} else {
				manifest += "  name: Acme\n"
			}
			manifest += "components:\n  - name: web\n    image: aim-test/server:1\n"
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			if err := mw.WriteField(FieldManifest, manifest); err != nil {
				t.Fatal(err)
			}
			mw.Close()
			rec := call(t, newAPI(t, fixtures(t), w.st), "PUT", c.path, w.secrets[c.who], &b, mw.FormDataContentType())
			if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.says) {
				t.Fatalf("status %d, want %d saying %q: %s", rec.Code, c.status, c.says, rec.Body)
			}
			if p, err := w.st.GetProvider(ctx, c.owner); err != nil || p.Webhook != c.want {
				t.Fatalf("provider %s's webhook is %+v (%v), want %q", c.owner, p, err, c.want)
			}
			if c.status == 200 && c.webhook != "" {
				if s, err := w.st.WebhookSecret(ctx, c.owner, false); err != nil || s == "" {
					t.Errorf("no signing secret: %q %v", s, err)
				}
			}
		})
	}
}
