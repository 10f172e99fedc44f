package server

import (
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// An older aim's data directory (0755, a database 0644) is made its
// owner's only; modes already tight, and what a link points at, stay.
func TestMakeDataDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	outside := filepath.Join(root, "outside.txt")
	for p, mode := range map[string]fs.FileMode{"certs/ca/root.key": 0o644, "aim.db": 0o644, "own.txt": 0o600, "exec": 0o755} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), nil, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, p), mode)
	}
	os.Chmod(dir, 0o755)
	os.WriteFile(outside, nil, 0o644)
	os.Chmod(outside, 0o644)
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := makeDataDir(dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{
		".": 0o700, "tmp": 0o700, "certs": 0o700, "certs/ca": 0o700, "certs/ca/root.key": 0o600,
		"aim.db": 0o600, "own.txt": 0o600, "exec": 0o700, "../outside.txt": 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %o, want %o", p, fi.Mode().Perm(), want)
		}
	}
}
