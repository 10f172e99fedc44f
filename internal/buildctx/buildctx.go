// Package buildctx packs a directory as a Docker build context, as the
// docker CLI does: what .dockerignore names is left out, but never the
// Dockerfile or .dockerignore itself, which the builder needs.
package buildctx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	archive "github.com/moby/go-archive"
	"github.com/moby/patternmatcher/ignorefile"
)

// Tar returns dir as a tar stream. dockerfile is the Dockerfile's name
// inside dir; empty means "Dockerfile".
func Tar(dir, dockerfile string) (io.ReadCloser, error) {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	var excludes []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading .dockerignore: %w", err)
		}
	}
	if len(excludes) > 0 {
		excludes = append(excludes, "!"+filepath.ToSlash(dockerfile), "!.dockerignore")
	}
	return archive.TarWithOptions(dir, &archive.TarOptions{ExcludePatterns: excludes})
}
