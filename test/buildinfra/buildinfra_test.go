// Package buildinfra tests the images builds in the cluster run on
// (images/build.sh registry and buildkit) against the real Docker engine:
// the registry takes a push and serves a pull by digest behind the
// htpasswd login the chart configures, and rootless BuildKit builds a
// context with a RUN step and pushes it there, a second time from the
// registry's cache.
package buildinfra

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const (
	registryImage = "localhost/aim/registry:3.1.2"
	buildkitImage = "localhost/aim/buildkit:0.34.2"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func suffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// buildImage runs images/build.sh for target (a no-op when the image is
// there): it needs root, Go and, for buildkit, debootstrap.
func buildImage(t *testing.T, target string) {
	t.Helper()
	if out, err := exec.Command("../../images/build.sh", target).CombinedOutput(); err != nil {
		t.Fatalf("images/build.sh %s: %v\n%s", target, err, out)
	}
}

type registry struct {
	name, network, hostAddr, user, password string
}

// startRegistry runs the registry image as the chart does: uid 65534,
// read-only root, no capabilities, htpasswd login, on a network of its
// own that the BuildKit container joins.
func startRegistry(t *testing.T) registry {
	t.Helper()
	buildImage(t, "registry")
	s := suffix(t)
	r := registry{name: "aim-buildinfra-registry-" + s, network: "aim-buildinfra-" + s, user: "aim", password: "pw-" + s}
	run(t, "docker", "network", "create", r.network)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", r.network).Run() })
	hash, err := bcrypt.GenerateFromPassword([]byte(r.password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := t.TempDir()
	if err := os.WriteFile(filepath.Join(auth, "htpasswd"), []byte(r.user+":"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "docker", "run", "-d", "--name", r.name, "--network", r.network,
		"--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", auth+":/etc/registry-auth:ro",
		"-e", "REGISTRY_AUTH=htpasswd", "-e", "REGISTRY_AUTH_HTPASSWD_REALM=aim",
		"-e", "REGISTRY_AUTH_HTPASSWD_PATH=/etc/registry-auth/htpasswd",
		"-e", "REGISTRY_HTTP_SECRET=test-"+s,
		"-p", "127.0.0.1::5000", registryImage)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "30", r.name).CombinedOutput()
			t.Logf("registry's last lines:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", "-v", r.name).Run()
	})
	port := run(t, "docker", "port", r.name, "5000/tcp")
	_, p, err := net.SplitHostPort(strings.Split(port, "\n")[0])
	if err != nil {
		t.Fatalf("docker port %s: %q: %v", r.name, port, err)
	}
	// The engine treats 127.0.0.0/8 as an insecure (HTTP) registry.
	r.hostAddr = "127.0.0.1:" + p
	return r
}

func (r registry) login(t *testing.T, config string) {
	t.Helper()
	cmd := exec.Command("docker", "--config", config, "login", "--username", r.user, "--password-stdin", r.hostAddr)
	cmd.Stdin = strings.NewReader(r.password)
	// The registry may not listen yet: a few tries, one a second.
	var out []byte
	var err error
	for range 20 {
		if out, err = cmd.CombinedOutput(); err == nil {
			return
		}
		time.Sleep(time.Second)
		cmd = exec.Command(cmd.Args[0], cmd.Args[1:]...)
		cmd.Stdin = strings.NewReader(r.password)
	}
	t.Fatalf("docker login %s: %v\n%s", r.hostAddr, err, out)
}

// A FROM-scratch image pushed with the engine comes back by its digest,
// and only with the login.
func TestRegistryPushPullByDigest(t *testing.T) {
	r := startRegistry(t)
	config := t.TempDir()
	ctx := t.TempDir()
	s := suffix(t)
	os.WriteFile(filepath.Join(ctx, "hello"), []byte("hello "+s+"\n"), 0o644)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\n"), 0o644)
	ref := r.hostAddr + "/buildinfra/hello:" + s
	run(t, "docker", "build", "-q", "-t", ref, ctx)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })

	if out, err := exec.Command("docker", "--config", config, "push", ref).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "no basic auth credentials") {
		t.Fatalf("push without a login: err %v, want a refusal for missing credentials:\n%s", err, out)
	}
	r.login(t, config)
	run(t, "docker", "--config", config, "push", ref)
	digested := run(t, "docker", "inspect", "--format", "{{index .RepoDigests 0}}", ref)
	if !strings.Contains(digested, "@sha256:") {
		t.Fatalf("after the push, the image's repo digest is %q", digested)
	}
	run(t, "docker", "rmi", ref)
	run(t, "docker", "--config", config, "pull", digested)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", digested).Run() })
	id := run(t, "docker", "create", digested, "/none")
	defer exec.Command("docker", "rm", id).Run()
	got := run(t, "docker", "cp", id+":/hello", "-")
	if !strings.Contains(got, "hello "+s) {
		t.Fatalf("/hello of the image pulled by digest %s: %q", digested, got)
	}
	t.Logf("pushed and pulled %s", digested)
}
