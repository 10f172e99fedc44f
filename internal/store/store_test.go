package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/aimhub/aim/internal/spec"
)

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSolutionRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	m, err := spec.Parse("aim.yaml", []byte("name: hello\ncomponents:\n  - name: web\n    image: x\n    resources: {memory: 64Mi}\n"))
	if err != nil {
		t.Fatal(err)
	}
	in := &Solution{Name: "hello", Manifest: m, Images: map[string]string{"web": "x"}, Generation: 3, State: "ready"}
	if err := s.Put(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.Generation != 3 || got.Images["web"] != "x" || got.Manifest.Components[0].Resources.Memory != 64<<20 || !got.Manifest.Components[0].IsPublic() {
		t.Errorf("round trip lost data: %+v", got)
	}
	if err := s.SetState(ctx, "hello", "failed", "boom"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "hello"); got.State != "failed" || got.LastError != "boom" {
		t.Errorf("SetState not saved: %+v", got)
	}
	if err := s.Delete(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "hello"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.SetState(ctx, "hello", "x", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetState of missing = %v, want ErrNotFound", err)
	}
}

func TestGenerationsNeverRepeat(t *testing.T) {
	s := open(t)
	seen := map[int64]bool{}
	for i := 0; i < 5; i++ {
		g, err := s.NextGeneration(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if seen[g] {
			t.Fatalf("generation %d repeated", g)
		}
		seen[g] = true
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if has, _ := s.HasTokens(ctx); has {
		t.Fatal("new store has tokens")
	}
	tok, err := s.CreateToken(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := s.VerifyToken(ctx, tok); err != nil || name != "admin" {
		t.Errorf("VerifyToken(valid) = %q, %v", name, err)
	}
	if _, err := s.VerifyToken(ctx, tok+"x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("VerifyToken(wrong) = %v, want ErrNotFound", err)
	}
}
