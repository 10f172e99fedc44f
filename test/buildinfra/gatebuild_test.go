package buildinfra

import (
	"encoding/base64"
	"io"
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

// The Job's build container with what its Secret gives it (kbuild's
// Secret: the Docker config with the build's gate token only, and
// buildkitd.toml with the gate as Docker Hub's mirror), against the gate
// before the real registry: the FROM image resolves through the gate's
// mirror, the image and its cache are pushed through it, and the second
// build comes from that cache, as in the cluster.
func TestBuildKitBuildsThroughTheGate(t *testing.T) {
	r := startRegistry(t)
	buildImage(t, "buildkit")
	s := suffix(t)
	const tok = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

	work := t.TempDir()
	stampDir := filepath.Join(work, "base")
	os.MkdirAll(stampDir, 0o755)
	gobuild := exec.Command("go", "build", "-o", filepath.Join(stampDir, "stamp"), "./testdata/stamp")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build stamp: %v\n%s", err, out)
	}
	// A base image outside aim/, as an admin pushes one for
	// builds.mirrorDockerHub.
	os.WriteFile(filepath.Join(stampDir, "Dockerfile"), []byte("FROM scratch\nCOPY stamp /stamp\n"), 0o644)
	base := "aim-base/gatebuild-" + s + ":1"
	ref := r.hostAddr + "/" + base
	run(t, "docker", "build", "-q", "-t", ref, stampDir)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	admin := t.TempDir()
	r.login(t, admin)
	run(t, "docker", "--config", admin, "push", ref)

	ctxDir := filepath.Join(work, "workspace", "context", "api")
	os.MkdirAll(ctxDir, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM "+base+"\nRUN [\"/stamp\", \"/built\", \"built "+s+"\"]\n"), 0o644)

	// The gate on the address the build container reaches the host at:
	// its network's gateway.
	gw := run(t, "docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", r.network)
	b := kbuild.Build{ID: "g-" + s, Solution: "gatebuild-" + s, Component: "api", Dir: "api",
		ContextURL: "http://unused", TokenSecret: "unused"}
	g, err := buildgate.New(buildgate.Config{
		Upstream:      "http://" + r.hostAddr,
		Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(r.user+":"+r.password)),
		Root:          kbuild.RepositoryRoot,
		Grants:        grants{tok: kbuild.RepositoryPath(b.Solution, b.Component)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	opts := kbuild.Options{Namespace: "builds", Image: buildkitImage, ServiceAccount: "aim-build",
		Registry: ln.Addr().String(), InsecureRegistry: true, MirrorDockerHub: true}
	job, err := opts.Job(b)
	if err != nil {
		t.Fatal(err)
	}
	sec := opts.Secret(b, nil, "unused", tok)
	docker, cfg := filepath.Join(work, "docker"), filepath.Join(work, "buildkitd")
	os.MkdirAll(docker, 0o755)
	os.MkdirAll(cfg, 0o755)
	os.WriteFile(filepath.Join(docker, "config.json"), []byte(sec.StringData[kbuild.SecretKeyDockerConfig]), 0o644)
	os.WriteFile(filepath.Join(cfg, "buildkitd.toml"), []byte(sec.StringData[kbuild.SecretKeyBuildkitd]), 0o644)
	if strings.Contains(sec.StringData[kbuild.SecretKeyDockerConfig], base64.StdEncoding.EncodeToString([]byte(r.user+":"+r.password))) {
		t.Fatal("the build's Docker config holds the registry's credential")
	}
	c := job.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{"workspace": filepath.Join(work, "workspace"), "docker": docker, "buildkitd-config": cfg}
	_, digest := runBuild(t, r, c, mounts, "first")
	_, digest2 := runBuild(t, r, c, mounts, "second")
	if digest2 != digest {
		t.Errorf("the cached build pushed %s, the first %s", digest2, digest)
	}

	// In the registry, by the name nodes pull, with its cache tag.
	img := r.hostAddr + "/" + kbuild.RepositoryPath(b.Solution, b.Component) + "@" + digest
	run(t, "docker", "--config", admin, "pull", img)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", img).Run() })
	id := run(t, "docker", "create", img, "/none")
	defer exec.Command("docker", "rm", id).Run()
	if got := run(t, "docker", "cp", id+":/built", "-"); !strings.Contains(got, "built "+s) {
		t.Fatalf("/built in %s: %q, want what the RUN step wrote", img, got)
	}
	req, _ := http.NewRequest("GET", "http://"+r.hostAddr+"/v2/"+kbuild.RepositoryPath(b.Solution, b.Component)+"/tags/list", nil)
	req.SetBasicAuth(r.user, r.password)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if !strings.Contains(string(body), "buildcache") {
		t.Errorf("the registry's tags of the build: %s, want the cache tag pushed through the gate", body)
	}
}
