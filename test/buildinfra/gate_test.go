package buildinfra

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/kube/buildgate"
	"github.com/aimhub/aim/internal/kube/kbuild"
)

type grants map[string]string

func (g grants) Repository(tok string) (string, bool) {
	r, ok := g[tok]
	return r, ok
}

// The registry gate (internal/kube/buildgate) in front of the real
// registry, with the engine as the client: a build's token pushes to its
// own repository and pulls base images outside aim/, and is refused
// another solution's repository (push and pull), the catalog, deletes and
// a mount from another repository; uploads' Locations name the gate.
func TestGateScopesABuildToItsRepository(t *testing.T) {
	r := startRegistry(t)
	s := suffix(t)
	own := kbuild.RepositoryPath("gate-"+s, "api")
	other := kbuild.RepositoryPath("other-"+s, "api")
	base := "aim-base/gate-" + s
	const tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

	g, err := buildgate.New(buildgate.Config{
		Upstream:      "http://" + r.hostAddr,
		Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(r.user+":"+r.password)),
		Root:          kbuild.RepositoryRoot,
		Grants:        grants{tok: own},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	gate := ln.Addr().String()

	// What the registry holds already: another solution's build and a
	// base image, pushed with the registry's own login.
	admin := t.TempDir()
	r.login(t, admin)
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "hello"), []byte("hello "+s+"\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\n"), 0o644)
	local := "aim-buildinfra-gate:" + s
	run(t, "docker", "build", "-q", "-t", local, ctx)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", local).Run() })
	tag := func(ref string) string {
		run(t, "docker", "tag", local, ref)
		t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
		return ref
	}
	run(t, "docker", "--config", admin, "push", tag(r.hostAddr+"/"+other+":1"))
	run(t, "docker", "--config", admin, "push", tag(r.hostAddr+"/"+base+":1"))

	// The build's Docker config, as kbuild renders it: build:<token> for
	// the gate only.
	build := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{gate: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(buildgate.User + ":" + tok))}}})
	os.WriteFile(filepath.Join(build, "config.json"), cfg, 0o600)
	docker := func(args ...string) (string, error) {
		out, err := exec.Command("docker", append([]string{"--config", build}, args...)...).CombinedOutput()
		return string(out), err
	}

	if out, err := docker("push", tag(gate+"/"+own+":1")); err != nil {
		t.Fatalf("push to the build's own repository through the gate: %v\n%s", err, out)
	}
	if out, err := docker("push", tag(gate+"/"+own+":buildcache")); err != nil {
		t.Fatalf("push of the cache tag: %v\n%s", err, out)
	}
	// It landed in the registry, under the same name.
	run(t, "docker", "--config", admin, "pull", r.hostAddr+"/"+own+":1")
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", r.hostAddr+"/"+own+":1").Run() })
	if out, err := docker("pull", gate+"/"+base+":1"); err != nil {
		t.Fatalf("pull of a base image outside aim/ through the gate: %v\n%s", err, out)
	}

	for _, c := range []struct{ what, ref string }{
		{"push to another solution's repository", tag(gate + "/" + other + ":2")},
		{"push over another solution's tag", tag(gate + "/" + other + ":1")},
		{"push to a base image", tag(gate + "/" + base + ":2")},
	} {
		out, err := docker("push", c.ref)
		if err == nil || !strings.Contains(out, "denied") {
			t.Errorf("%s (%s): %v, want a refusal:\n%s", c.what, c.ref, err, out)
		}
	}
	run(t, "docker", "rmi", gate+"/"+other+":1")
	if out, err := docker("pull", gate+"/"+other+":1"); err == nil || !strings.Contains(out, "denied") {
		t.Errorf("pull of another solution's build through the gate: %v, want a refusal:\n%s", err, out)
	}

	// Straight HTTP: the catalog, a delete, a mount, another token.
	digest := run(t, "docker", "inspect", "--format", "{{index .RepoDigests 0}}", r.hostAddr+"/"+own+":1")
	digest = digest[strings.Index(digest, "@")+1:]
	var manifest struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	mres := request(t, "GET", "http://"+gate+"/v2/"+own+"/manifests/"+digest, tok, "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	if err := json.NewDecoder(mres.Body).Decode(&manifest); err != nil || len(manifest.Layers) == 0 {
		t.Fatalf("the build's own manifest through the gate: %d, %v", mres.StatusCode, err)
	}
	mres.Body.Close()
	layer := manifest.Layers[0].Digest
	for _, c := range []struct {
		what, method, url, token string
		want                     int
	}{
		{"the catalog", "GET", "/v2/_catalog", tok, 403},
		{"a delete of its own manifest", "DELETE", "/v2/" + own + "/manifests/" + digest, tok, 403},
		{"another solution's tags", "GET", "/v2/" + other + "/tags/list", tok, 403},
		{"an encoded slash", "GET", "/v2/aim%2Fother-" + s + "%2Fapi/tags/list", tok, 403},
		{"a dot segment", "GET", "/v2/" + own + "/../../other-" + s + "/api/tags/list", tok, 403},
		{"another token", "GET", "/v2/" + own + "/tags/list", strings.Repeat("f", 64), 401},
		{"no token", "GET", "/v2/", "", 401},
		{"its own tags", "GET", "/v2/" + own + "/tags/list", tok, 200},
		// A mount from another solution's repository is dropped: a plain
		// upload (202), not the blob mounted (201).
		{"a mount from another repository", "POST", "/v2/" + own + "/blobs/uploads/?mount=" + layer + "&from=" + other, tok, 202},
		{"a mount from its own repository", "POST", "/v2/" + own + "/blobs/uploads/?mount=" + layer + "&from=" + own, tok, 201},
	} {
		res := request(t, c.method, "http://"+gate+c.url, c.token, "")
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s: %s %s: %d, want %d", c.what, c.method, c.url, res.StatusCode, c.want)
		}
		if c.want == 403 && !strings.Contains(res.Header.Get("Content-Type"), "json") {
			t.Errorf("%s: refused with Content-Type %q, want a registry's JSON error", c.what, res.Header.Get("Content-Type"))
		}
		if c.want == 202 {
			// The upload goes on at the gate, not at the registry.
			if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "http://"+gate+"/v2/"+own+"/blobs/uploads/") && !strings.HasPrefix(loc, "/v2/"+own+"/blobs/uploads/") {
				t.Errorf("%s: Location %q, want the gate's", c.what, loc)
			}
		}
	}
}

func request(t *testing.T, method, url, tok, accept string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.SetBasicAuth(buildgate.User, tok)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}
