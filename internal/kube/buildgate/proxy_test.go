package buildgate

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type grantsMap map[string]string

func (g grantsMap) Repository(tok string) (string, bool) { r, ok := g[tok]; return r, ok }

// The gate before a stand-in registry: it asks for a token, forwards
// only what the build may do, with the registry's credential in place of
// the build's, and keeps an upload's Location at the gate.
func TestGateForwards(t *testing.T) {
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization")+" xfh="+r.Header.Get("X-Forwarded-Host"))
		if r.Method == http.MethodPost {
			// As Distribution does when it ignores X-Forwarded-Host.
			w.Header().Set("Location", "http://"+r.Host+r.URL.Path+"3f1c?_state=s")
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer upstream.Close()
	g, err := New(Config{Upstream: upstream.URL, Authorization: "Basic cmVnaXN0cnk=", Root: "aim/", Grants: grantsMap{"tok": own}})
	if err != nil {
		t.Fatal(err)
	}
	gate := httptest.NewServer(g)
	defer gate.Close()
	do := func(method, path, user, tok string) *http.Response {
		req, _ := http.NewRequest(method, gate.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, tok)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, c := range []struct {
		method, path, user, tok string
		want                    int
	}{
		{"GET", "/v2/", "", "", 401},
		{"GET", "/v2/", "build", "other", 401},
		{"GET", "/v2/", "aim", "tok", 401},
		{"GET", "/v2/_catalog", "build", "tok", 403},
		{"GET", "/v2/aim/other/api/tags/list", "build", "tok", 403},
		{"GET", "/v2/" + own + "/tags/list", "build", "tok", 200},
	} {
		if res := do(c.method, c.path, c.user, c.tok); res.StatusCode != c.want {
			t.Errorf("%s %s as %q: %d, want %d", c.method, c.path, c.user, res.StatusCode, c.want)
		} else if c.want == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s %s: 401 without a Basic challenge", c.method, c.path)
		}
	}
	res := do("POST", "/v2/"+own+"/blobs/uploads/?mount="+dg+"&from=aim/other/api", "build", "tok")
	gateHost := strings.TrimPrefix(gate.URL, "http://")
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, gate.URL+"/v2/"+own+"/blobs/uploads/3f1c") {
		t.Errorf("upload Location %q, want the gate's %s", loc, gate.URL)
	}
	want := []string{
		"GET /v2/" + own + "/tags/list auth=Basic cmVnaXN0cnk= xfh=" + gateHost,
		"POST /v2/" + own + "/blobs/uploads/ auth=Basic cmVnaXN0cnk= xfh=" + gateHost,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the registry got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestNewRefuses(t *testing.T) {
	for _, u := range []string{"registry.example.com", "ftp://r", "https://registry.example.com/aim", "http://"} {
		if _, err := New(Config{Upstream: u, Root: "aim/", Grants: grantsMap{}}); err == nil {
			t.Errorf("upstream %q accepted", u)
		}
	}
}

func TestDockerConfigAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(v any) string {
		f := filepath.Join(dir, "config.json")
		b, _ := json.Marshal(v)
		os.WriteFile(f, b, 0o600)
		return f
	}
	f := write(map[string]any{"auths": map[string]any{
		"aim-registry.aim.svc:5000": map[string]string{"auth": "YWltOnB3"},
		"https://r.example.com/":    map[string]string{"username": "u", "password": "p"},
	}})
	for host, want := range map[string]string{"aim-registry.aim.svc:5000": "Basic YWltOnB3", "r.example.com": "Basic dTpw"} {
		if got, err := DockerConfigAuth(f, host); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", host, got, err, want)
		}
	}
	if _, err := DockerConfigAuth(f, "other:5000"); err == nil || !strings.Contains(err.Error(), "no credentials for other:5000") {
		t.Errorf("a host it has none for: %v", err)
	}
	if _, err := DockerConfigAuth(filepath.Join(dir, "none"), "x"); err == nil {
		t.Error("a missing file is accepted")
	}
}
