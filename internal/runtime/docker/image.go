package docker

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"

	"github.com/aimhub/aim/internal/spec"
)

// Image is what aim reads of an image's configuration to run it.
type Image struct {
	// User is the image's USER; empty means root.
	User string
	// Env is the image's ENV, as KEY=VALUE.
	Env        []string
	WorkingDir string
	Entrypoint []string
	Cmd        []string
}

// ImageOf reads an image's configuration.
func ImageOf(img image.InspectResponse) Image {
	if img.Config == nil {
		return Image{}
	}
	c := img.Config
	return Image{User: c.User, Env: c.Env, WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, Cmd: c.Cmd}
}

// Command is what a container of the image runs: ENTRYPOINT, then CMD.
func (i Image) Command() []string { return append(slices.Clone(i.Entrypoint), i.Cmd...) }

// Getenv returns the value the image's ENV gives key, "" if none.
func (i Image) Getenv(key string) string {
	for _, kv := range i.Env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

func (i Image) setsEnv(key string) bool {
	for _, kv := range i.Env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// writableHome is the HOME aim gives a process that has none it can
// write: uid 65534's home is /nonexistent on Debian (and "/" in an image
// without /etc/passwd), and Jupyter, pip, matplotlib and many more fail
// when they cannot create their directories there.
const writableHome = "/tmp"

// defaultHome is the HOME aim adds to a container's environment: /tmp
// when it runs as uid 65534 (the user aim picks for a root image, or the
// image's own USER nobody) and neither the image's ENV nor the
// component's env sets HOME; "" otherwise. Another USER of the image
// keeps its home from the image's /etc/passwd: its author made it.
func defaultHome(img Image, user string, env map[string]spec.EnvValue) string {
	if _, ok := env["HOME"]; ok || img.setsEnv("HOME") {
		return ""
	}
	if user == "" {
		user = img.User
	}
	u, _, _ := strings.Cut(user, ":")
	if u == "65534" || u == "nobody" {
		return writableHome
	}
	return ""
}

// TmpFiles lists the files the image of a created container has under
// /tmp, the first max of them, and says whether there are more: aim
// mounts a tmpfs over /tmp, which hides them. The engine reads a created
// container's /tmp from the image's layers, as no tmpfs is mounted before
// it starts.
func TmpFiles(ctx context.Context, cli FileCopier, id string, max int) (files []string, more bool, err error) {
	return Files(ctx, cli, id, "/tmp", max)
}

// FileCopier reads a container's files, as the engine's API does.
type FileCopier interface {
	CopyFromContainer(ctx context.Context, container, srcPath string) (io.ReadCloser, container.PathStat, error)
}

// Files lists the files of a container under dir as the engine sees them
// (the image's layers and what the container wrote there, not a tmpfs),
// the first max of them, and says whether there are more. A dir that is
// not there has none.
func Files(ctx context.Context, cli FileCopier, id, dir string, max int) (files []string, more bool, err error) {
	rc, _, err := cli.CopyFromContainer(ctx, id, dir)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, false, nil
		}
		if err != nil {
			return files, false, err
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		if len(files) == max {
			return files, true, nil
		}
		// The archive names entries from dir's own name on.
		files = append(files, path.Join(path.Dir(dir), h.Name))
	}
}

// Writes lists the files a running container's process pid has under
// /tmp (the tmpfs) and the component's writable paths (dirs, absolute),
// the first max of them, through the host's /proc/<pid>/root: the
// engine's API reads the image's layers, not a tmpfs. It fails where aim
// does not run on the engine's host as root. A path that resolves through a symlink is skipped: the host
// would resolve it, outside the container. The root filesystem is
// read-only, so the path's directories cannot change under the walk, and
// the walk follows no link inside.
func Writes(pid int, dirs []string, max int) ([]string, error) {
	if pid <= 0 {
		return nil, errors.New("no process")
	}
	root := filepath.Join("/proc", strconv.Itoa(pid), "root")
	if _, err := os.Stat(root); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errors.New("the process is gone")
		}
		return nil, err
	}
	var out []string
	for _, dir := range dirs {
		if throughLink(root, dir) {
			continue
		}
		top := filepath.Join(root, dir)
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if len(out) >= max {
				return fs.SkipAll
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(top, p)
				out = append(out, path.Join(dir, filepath.ToSlash(rel)))
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.SkipAll) {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return out, err
		}
	}
	return out, nil
}

// throughLink reports whether dir, under root, has a symlink on its way.
func throughLink(root, dir string) bool {
	p := root
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return true
		}
	}
	return false
}
