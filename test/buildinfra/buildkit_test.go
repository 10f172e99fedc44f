package buildinfra

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/aimhub/aim/internal/kube/kbuild"
)

// The build container of the Job internal/kube/kbuild renders, run on the
// engine as the kubelet would: the same image, command, arguments,
// environment, user and security settings, its volumes as bind mounts and
// volumes. It builds a context whose RUN step runs in BuildKit's runc,
// pushes to the registry, and a second build in a fresh container comes
// from the registry's cache.
func TestBuildKitRootlessBuildsAndPushes(t *testing.T) {
	r := startRegistry(t)
	buildImage(t, "buildkit")
	s := suffix(t)

	work := t.TempDir()
	ctxDir := filepath.Join(work, "workspace", "context", "api")
	os.MkdirAll(ctxDir, 0o755)
	gobuild := exec.Command("go", "build", "-o", filepath.Join(ctxDir, "stamp"), "./testdata/stamp")
	gobuild.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build stamp: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY stamp /stamp\nRUN [\"/stamp\", \"/built\", \"built " + s + "\"]\n"
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644)

	pushHost := r.name + ":5000"
	cfg := filepath.Join(work, "buildkitd")
	os.MkdirAll(cfg, 0o755)
	os.WriteFile(filepath.Join(cfg, "buildkitd.toml"), []byte("[registry.\""+pushHost+"\"]\n  http = true\n"), 0o644)
	docker := filepath.Join(work, "docker")
	os.MkdirAll(docker, 0o755)
	auth := base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.password))
	os.WriteFile(filepath.Join(docker, "config.json"), []byte(`{"auths":{"`+pushHost+`":{"auth":"`+auth+`"}}}`), 0o644)

	opts := kbuild.Options{
		Namespace: "builds", Image: buildkitImage, ServiceAccount: "aim-build",
		Registry: pushHost, InsecureRegistry: true,
	}
	b := kbuild.Build{ID: "t-" + s, Solution: "buildinfra-" + s, Component: "api", Dir: "api",
		ContextURL: "http://unused", TokenSecret: "unused"}
	job, err := opts.Job(b)
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	mounts := map[string]string{"workspace": filepath.Join(work, "workspace"), "docker": docker, "buildkitd-config": cfg}

	first, digest := runBuild(t, r, c, mounts, "first")
	second, digest2 := runBuild(t, r, c, mounts, "second")
	t.Logf("uncached build: %s, cached build (fresh buildkitd, cache from the registry): %s", first, second)
	if digest2 != digest {
		t.Errorf("the cached build pushed %s, the first %s: an unchanged context should give the same image", digest2, digest)
	}

	config := t.TempDir()
	r.login(t, config)
	ref := r.hostAddr + "/" + kbuild.RepositoryPath(b.Solution, "api") + "@" + digest
	run(t, "docker", "--config", config, "pull", ref)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
	id := run(t, "docker", "create", ref, "/none")
	defer exec.Command("docker", "rm", id).Run()
	if got := run(t, "docker", "cp", id+":/built", "-"); !strings.Contains(got, "built "+s) {
		t.Fatalf("/built in %s: %q, want what the RUN step wrote", ref, got)
	}
}

// runBuild runs the Job's build container once and returns how long it
// took and the digest buildctl wrote to its termination message.
func runBuild(t *testing.T, r registry, c corev1.Container, hostDirs map[string]string, which string) (time.Duration, string) {
	t.Helper()
	term := filepath.Join(t.TempDir(), "termination-log")
	// As the kubelet makes it: a file the container's user may write.
	if err := os.WriteFile(term, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(term, 0o666)
	name := "aim-buildinfra-buildkit-" + which + "-" + suffix(t)
	args := []string{"run", "--name", name, "--network", r.network,
		"--user", "1000:1000", "--read-only",
		// The Job asks for both Unconfined (checked in kbuild's goldens).
		"--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
		"--memory", strconv.FormatInt(c.Resources.Limits.Memory().Value(), 10), "--cpus", c.Resources.Limits.Cpu().AsDec().String(),
		"-v", term + ":/dev/termination-log",
		"--entrypoint", c.Command[0]}
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil || !*sc.AllowPrivilegeEscalation {
		args = append(args, "--security-opt", "no-new-privileges")
	}
	if sc.Capabilities != nil {
		for _, cp := range sc.Capabilities.Add {
			args = append(args, "--cap-add", string(cp))
		}
		for _, cp := range sc.Capabilities.Drop {
			args = append(args, "--cap-drop", string(cp))
		}
	}
	for _, e := range c.Env {
		args = append(args, "-e", e.Name+"="+e.Value)
	}
	for _, m := range c.VolumeMounts {
		switch m.Name {
		case "tmp":
			args = append(args, "--tmpfs", m.MountPath)
		case "run":
			args = append(args, "--tmpfs", m.MountPath+":uid=1000,gid=1000,mode=0700")
		case "buildkitd":
			// An anonymous volume, as an emptyDir: not a tmpfs, which
			// overlayfs in a user namespace cannot always sit on.
			args = append(args, "-v", m.MountPath)
		default:
			dir, ok := hostDirs[m.Name]
			if !ok {
				t.Fatalf("the Job mounts %s at %s, which the test has no directory for", m.Name, m.MountPath)
			}
			spec := dir + ":" + m.MountPath
			if m.ReadOnly {
				spec += ":ro"
			}
			args = append(args, "-v", spec)
		}
	}
	args = append(args, c.Image)
	args = append(args, c.Command[1:]...)
	args = append(args, c.Args...)
	start := time.Now()
	out, err := exec.Command("docker", args...).CombinedOutput()
	took := time.Since(start)
	exec.Command("docker", "rm", "-f", "-v", name).Run()
	if err != nil {
		t.Fatalf("%s build: %v\n%s", which, err, tail(string(out), 40))
	}
	var meta map[string]any
	raw, _ := os.ReadFile(term)
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("%s build: termination message %q: %v\n%s", which, raw, err, tail(string(out), 20))
	}
	digest, _ := meta["containerimage.digest"].(string)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("%s build: no containerimage.digest in the termination message %s", which, raw)
	}
	if len(raw) > 4096 {
		t.Errorf("%s build: the termination message is %d bytes; the kubelet keeps 4096", which, len(raw))
	}
	if which == "second" && !strings.Contains(string(out), "CACHED") {
		t.Errorf("second build: no step CACHED from the registry's cache:\n%s", tail(string(out), 30))
	}
	t.Logf("%s build (%s):\n%s", which, took, tail(string(out), 12))
	return took, digest
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
