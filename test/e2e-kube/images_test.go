//go:build kube

package e2ekube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// buildImages builds aim, the test server and the probe, and imports
// them, the registry's and BuildKit's images into the cluster's
// containerd (the cluster's own images; the examples' are built in the
// cluster and pulled from its registry). Images are tagged with
// (a prefix of) their Docker image ID, so that a changed build is a new
// reference and pods never run a stale image of the same tag.
func buildImages() error {
	work, err := os.MkdirTemp("", "aim-e2e-kube-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// aim is one static binary (modernc.org/sqlite is pure Go): the host's
	// CLI and the image's entry point alike.
	aimBin = filepath.Join(repo, "bin", "aim-e2e-kube")
	goBuilds := []struct{ name, pkg, out string }{
		{"aim", "./cmd/aim", aimBin},
		{"testserver", "./test/testserver", filepath.Join(work, "testserver", "bin")},
		{"probe", "./test/e2e-kube/probe", filepath.Join(work, "probe", "bin")},
	}
	for _, b := range goBuilds {
		logf("building %s (static)", b.name)
		if _, err := sh(repo, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", b.out, b.pkg); err != nil {
			return err
		}
	}
	if err := scratchImage(work, "aim", aimBin); err != nil {
		return err
	}
	for _, n := range []string{"testserver", "probe"} {
		if err := scratchImage(work, n, filepath.Join(work, n, "bin")); err != nil {
			return err
		}
	}

	// The examples build in the cluster FROM the local base images,
	// pushed to the chart's registry once it is up (pushBaseImages).
	logf("building the base images, the registry's and BuildKit's (cached)")
	for _, b := range []string{"go", "registry", "buildkit"} {
		if _, err := sh(repo, nil, "images/build.sh", b); err != nil {
			return err
		}
	}
	images["registry"], images["buildkit"] = "localhost/aim/registry:3.1.2", "localhost/aim/buildkit:0.34.2"
	if out, err := sh(repo, nil, "images/build.sh", "python"); err != nil {
		logf("no python base image, so no text-embedding: %v\n%s", err, tail(out, 10))
	} else {
		textEmbedding = true
	}

	var refs []string
	for _, r := range images {
		refs = append(refs, r)
	}
	logf("importing %d images into the cluster", len(refs))
	_, err = sh(repo, nil, "test/cluster/import-image.sh", refs...)
	return err
}

// scratchImage puts a static binary into an image FROM scratch, run as
// nobody.
func scratchImage(work, name, bin string) error {
	dir := filepath.Join(work, name+"-image")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
		return err
	}
	df := fmt.Sprintf("FROM scratch\nCOPY %s /%s\nUSER 65534:65534\nENTRYPOINT [\"/%s\"]\n", name, name, name)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	ref, err := dockerBuild("aim-e2e/"+name, dir)
	if err != nil {
		return err
	}
	images[name] = ref
	return nil
}

// dockerBuild builds dir with the engine's classic builder (no BuildKit on
// this Docker) and tags the result name:<12 hex digits of its ID>.
func dockerBuild(name, dir string) (string, error) {
	logf("docker build %s", name)
	out, err := sh(dir, []string{"DOCKER_BUILDKIT=0"}, "docker", "build", "-q", ".")
	if err != nil {
		return "", err
	}
	lines := strings.Fields(strings.TrimSpace(out))
	id := strings.TrimPrefix(lines[len(lines)-1], "sha256:")
	if len(id) < 12 {
		return "", fmt.Errorf("docker build %s: no image ID in %q", dir, out)
	}
	ref := name + ":" + id[:12]
	if _, err := sh(dir, nil, "docker", "tag", id, ref); err != nil {
		return "", err
	}
	return ref, nil
}
