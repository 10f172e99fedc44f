package dockercheck

import (
	"slices"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/aimhub/aim/internal/spec"
)

// TestWritableDirs pins the writable: line aim check proposes from the
// engine's diff of the writable twin.
func TestWritableDirs(t *testing.T) {
	const (
		mod = container.ChangeModify
		add = container.ChangeAdd
		del = container.ChangeDelete
	)
	ch := func(kv ...any) []container.FilesystemChange {
		var out []container.FilesystemChange
		for i := 0; i < len(kv); i += 2 {
			out = append(out, container.FilesystemChange{Path: kv[i].(string), Kind: kv[i+1].(container.ChangeType)})
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		changes      []container.FilesystemChange
		dirs, atRoot []string
	}{
		{"nginx as Debian packages it", ch("/run", mod, "/run/nginx.pid", add, "/var", mod, "/var/lib", mod, "/var/lib/nginx", mod,
			"/var/lib/nginx/body", add, "/var/lib/nginx/proxy", add, "/var/log", mod, "/var/log/nginx", mod, "/var/log/nginx/access.log", mod),
			[]string{"/run", "/var/lib/nginx", "/var/log/nginx"}, nil},
		{"a new directory's content is its parent's", ch("/home", mod, "/home/app", mod, "/home/app/.cache", add, "/home/app/.cache/pip", add, "/home/app/.cache/pip/x", add),
			[]string{"/home/app"}, nil},
		{"a new directory at the top is a path itself", ch("/data", add, "/data/db", add), []string{"/data"}, nil},
		{"a file at the top has no directory", ch("/app.pid", add), nil, []string{"/app.pid"}},
		{"a deleted file", ch("/etc", mod, "/etc/motd", del), []string{"/etc"}, nil},
		{"one under another is kept once", ch("/var", mod, "/var/cache", mod, "/var/cache/x", add, "/var/cache/y", mod, "/var/z", add),
			[]string{"/var"}, nil},
		{"/tmp is writable already", ch("/tmp", mod, "/tmp/x", add), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dirs, atRoot := writableDirs(tc.changes)
			if !slices.Equal(dirs, tc.dirs) || !slices.Equal(atRoot, tc.atRoot) {
				t.Errorf("got %q, at the root %q; want %q, %q", dirs, atRoot, tc.dirs, tc.atRoot)
			}
		})
	}
}

// TestMergeWritable: the proposed line keeps the component's own paths
// (with their sizes), less those a new path holds.
func TestMergeWritable(t *testing.T) {
	have := []spec.Writable{{Path: "/run", Size: spec.DefaultWritableSize}, {Path: "/var/lib/nginx/body", Size: 1 << 30}, {Path: "/home/app", Size: 1 << 30}}
	got := mergeWritable(have, []string{"/var/lib/nginx"})
	if want := []string{"/run", "{path: /home/app, size: 1Gi}", "/var/lib/nginx"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
