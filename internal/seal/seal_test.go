package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k := NewKey()
	box := k.Seal([]byte("sk-123"), "shop", "acme", "OPENAI_API_KEY")
	if bytes.Contains(box, []byte("sk-123")) {
		t.Fatal("the value is in clear in the box")
	}
	for _, tc := range []struct {
		name  string
		key   *Key
		box   []byte
		place []string
		want  error
	}{
		{"same place", k, box, []string{"shop", "acme", "OPENAI_API_KEY"}, nil},
		{"another name", k, box, []string{"shop", "acme", "OTHER"}, ErrOpen},
		{"another owner", k, box, []string{"shop", "rival", "OPENAI_API_KEY"}, ErrOpen},
		{"another key", NewKey(), box, []string{"shop", "acme", "OPENAI_API_KEY"}, ErrOpen},
		{"changed byte", k, append(append([]byte(nil), box[:30]...), append([]byte{box[30] ^ 1}, box[31:]...)...), []string{"shop", "acme", "OPENAI_API_KEY"}, ErrOpen},
		{"short", k, box[:10], []string{"shop", "acme", "OPENAI_API_KEY"}, ErrOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.key.Open(tc.box, tc.place...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && string(got) != "sk-123" {
				t.Errorf("opened %q", got)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "secret.key")
	k1, err := LoadKey(p)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v, want 0600", fi.Mode(), err)
	}
	k2, err := LoadKey(p)
	if err != nil || k2.k != k1.k {
		t.Fatalf("reloaded a different key: %v", err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable key was accepted: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(bad); err == nil || !strings.Contains(err.Error(), "not an aim secret key") {
		t.Errorf("a bad key file was accepted: %v", err)
	}
}
