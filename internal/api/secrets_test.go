package api

import (
	"bytes"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// manifestBody is a deploy's multipart body for the manifest yaml.
func manifestBody(t *testing.T, yaml string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	if err := mw.WriteField(FieldManifest, yaml); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

// TestSecrets: a secret's value goes in and never comes out of the API; a
// deploy that names a secret not set is refused before the controller is
// asked, at the line of the reference; and a secret set for a name no one
// holds stays its setter's, out of reach of another provider who claims
// the name.
func TestSecrets(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	ctl := fixtures(t)
	a := newAPI(t, ctl, w.st)
	const value = "sk-live-0123456789"
	manifest := "name: chat\ncomponents:\n  - name: web\n    image: aim-test/server:1\n    env:\n      MODEL: small\n      OPENAI_API_KEY: {secret: OPENAI_API_KEY}\n"

	body, ct := manifestBody(t, manifest)
	rec := call(t, a, "PUT", "/api/v1/solutions/chat", w.secrets["acme"], body, ct)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "aim.yaml:7: components[0].env.OPENAI_API_KEY: secret \\\"OPENAI_API_KEY\\\" is not set for solution chat") {
		t.Fatalf("deploy without the secret: %d %s", rec.Code, rec.Body)
	}
	if len(ctl.calls) != 0 {
		t.Fatalf("the controller was asked to %q", ctl.calls)
	}

	// beta sets one for the name first; it is beta's, not acme's.
	if rec := call(t, a, "PUT", "/api/v1/solutions/chat/secrets/OPENAI_API_KEY", w.secrets["beta"], strings.NewReader("beta's"), ""); rec.Code != http.StatusOK {
		t.Fatalf("beta setting: %d %s", rec.Code, rec.Body)
	}
	body, ct = manifestBody(t, manifest)
	if rec := call(t, a, "PUT", "/api/v1/solutions/chat", w.secrets["acme"], body, ct); rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("acme deployed with beta's secret: %d %s", rec.Code, rec.Body)
	}

	for _, c := range []struct {
		name, method, path, caller, body string
		want                             int
	}{
		{"set", "PUT", "/api/v1/solutions/chat/secrets/OPENAI_API_KEY", "acme", value, http.StatusOK},
		{"empty", "PUT", "/api/v1/solutions/chat/secrets/OPENAI_API_KEY", "acme", "", http.StatusBadRequest},
		{"bad name", "PUT", "/api/v1/solutions/chat/secrets/-x", "acme", value, http.StatusBadRequest},
		{"too large", "PUT", "/api/v1/solutions/chat/secrets/BIG", "acme", strings.Repeat("x", MaxSecret+1), http.StatusRequestEntityTooLarge},
		{"list", "GET", "/api/v1/solutions/chat/secrets", "acme", "", http.StatusOK},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := call(t, a, c.method, c.path, w.secrets[c.caller], strings.NewReader(c.body), "")
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			if strings.Contains(rec.Body.String(), value) {
				t.Errorf("the answer holds the value: %s", rec.Body)
			}
		})
	}
	rec = call(t, a, "GET", "/api/v1/solutions/chat/secrets", w.secrets["acme"], nil, "")
	var list struct {
		Secrets []struct{ Name string } `json:"secrets"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list.Secrets) != 1 || list.Secrets[0].Name != "OPENAI_API_KEY" {
		t.Fatalf("acme's list: %s %v", rec.Body, err)
	}

	body, ct = manifestBody(t, manifest)
	rec = call(t, a, "PUT", "/api/v1/solutions/chat", w.secrets["acme"], body, ct)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("deploy with the secret: %d %s", rec.Code, rec.Body)
	}
	for _, who := range []string{"acme", "admin", "none", "beta"} {
		rec := call(t, a, "GET", "/api/v1/solutions/chat", w.secrets[who], nil, "")
		if strings.Contains(rec.Body.String(), value) {
			t.Errorf("%s sees the value: %s", who, rec.Body)
		}
	}
	// Now the name is acme's: beta may not read or change its secrets.
	if rec := call(t, a, "GET", "/api/v1/solutions/chat/secrets", w.secrets["beta"], nil, ""); rec.Code != http.StatusForbidden {
		t.Errorf("beta listing acme's secrets: %d %s", rec.Code, rec.Body)
	}
}
