package buildctx

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Regression: a .dockerignore that names the Dockerfile made the builder
// fail with "Cannot locate specified Dockerfile"; docker always sends it.
func TestTarDirKeepsDockerfile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile":    "FROM scratch\n",
		".dockerignore": "*_test.go\nDockerfile\n.dockerignore\n",
		"main.go":       "package main\n",
		"main_test.go":  "package main\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, err := Tar(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	slices.Sort(names)
	want := []string{".dockerignore", "Dockerfile", "main.go"}
	if !slices.Equal(names, want) {
		t.Errorf("context holds %v, want %v", names, want)
	}
}
