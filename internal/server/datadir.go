package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// makeDataDir creates the data directory 0700 (with tmp/ for uploads),
// and tightens what an older aim left group- or world-readable: the
// database, the internal CA's key, ACME accounts and certificates all
// live there. New files are created 0600 by whoever writes them; this
// only repairs the old ones, once, and says so.
func makeDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	// A directory only its owner can enter keeps everything in it
	// private whatever the entries' own modes: the walk is for an older
	// aim's 0755 directory, and a start-up with a tight one costs a stat.
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("reading the data directory: %w", err)
	} else if fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	fixed, failed := 0, 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking: an upload's spool
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // never follow a link out of the directory
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm()&0o077 == 0 {
			return nil
		}
		// Only what this user owns: a mounted volume's root (a
		// Kubernetes emptyDir or PVC, with its fsGroup) is not aim's to
		// change, and its mode is the volume's business.
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
			return nil
		}
		if err := os.Chmod(p, info.Mode().Perm()&^0o077|want&0o700); err != nil {
			failed++
			return nil
		}
		fixed++
		return nil
	})
	if err != nil {
		return fmt.Errorf("tightening the data directory's modes: %w", err)
	}
	if failed > 0 {
		log.Warn("some entries of the data directory are readable by others and could not be changed", "dir", dir, "entries", failed)
	}
	if fixed > 0 {
		log.Warn("the data directory had entries others could read (an older aim made them so); they are now its owner's only", "dir", dir, "entries", fixed)
	}
	return nil
}
