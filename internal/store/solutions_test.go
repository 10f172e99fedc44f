package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

func manifest(t *testing.T, name string) *spec.Manifest {
	t.Helper()
	m, err := spec.Parse("aim.yaml", []byte("name: "+name+"\ncomponents:\n  - name: web\n    image: x\n    resources: {memory: 64Mi}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func names(sols []*Solution) []string {
	var out []string
	for _, s := range sols {
		out = append(out, s.Name)
	}
	return out
}

func TestSolutionRoundTrip(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		in := &Solution{Name: "hello", Manifest: manifest(t, "hello"), Images: map[string]string{"web": "x"}, Generation: 3,
			State: "ready", SkipChecks: true, Check: []byte(`{"ok":true}`)}
		if err := s.Put(ctx, in); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if got.Generation != 3 || got.Images["web"] != "x" || got.Manifest.Components[0].Resources.Memory != 64<<20 ||
			!got.Manifest.Components[0].IsPublic() || !got.SkipChecks || string(got.Check) != `{"ok":true}` || got.Owner != "" ||
			!got.CreatedAt.Equal(in.CreatedAt.Truncate(time.Millisecond)) {
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
		if err := s.Delete(ctx, "hello"); err != nil {
			t.Errorf("Delete of missing = %v, want nil", err)
		}
	})
}

func TestSolutionOwners(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, p := range []string{"acme", "globex"} {
			if err := s.PutProvider(ctx, &Provider{Name: p}); err != nil {
				t.Fatal(err)
			}
		}
		for _, sol := range []struct{ name, owner string }{
			{"b-acme", "acme"}, {"a-acme", "acme"}, {"platform", ""}, {"globex-one", "globex"},
		} {
			if err := s.Put(ctx, &Solution{Name: sol.name, Owner: sol.owner, Manifest: manifest(t, sol.name), State: "ready"}); err != nil {
				t.Fatal(err)
			}
		}
		var uerr *UnknownProviderError
		if err := s.Put(ctx, &Solution{Name: "stray", Owner: "nobody", Manifest: manifest(t, "stray"), State: "ready"}); !errors.As(err, &uerr) || uerr.Name != "nobody" {
			t.Errorf("Put with an unknown owner = %v, want an UnknownProviderError naming it", err)
		}
		for _, c := range []struct {
			owner string
			want  []string
		}{
			{"acme", []string{"a-acme", "b-acme"}},
			{"globex", []string{"globex-one"}},
			{"", []string{"platform"}},
			{"nobody", nil},
		} {
			got, err := s.ListByOwner(ctx, c.owner)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(names(got), c.want) {
				t.Errorf("ListByOwner(%q) = %v, want %v", c.owner, names(got), c.want)
			}
		}
		all, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"a-acme", "b-acme", "globex-one", "platform"}; !slices.Equal(names(all), want) {
			t.Errorf("List = %v, want %v", names(all), want)
		}
		if all[0].Owner != "acme" || all[3].Owner != "" {
			t.Errorf("List lost the owners: %q, %q", all[0].Owner, all[3].Owner)
		}

		// A Put replaces: the owner is what the caller gives, and the
		// creation time stays what it carries over.
		sol, _ := s.Get(ctx, "platform")
		sol.Owner = "globex"
		sol.Generation = 9
		if err := s.Put(ctx, sol); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Get(ctx, "platform"); got.Owner != "globex" || got.Generation != 9 || !got.CreatedAt.Equal(sol.CreatedAt) {
			t.Errorf("after a Put that moves it: %+v", got)
		}
	})
}

func TestGenerationsNeverRepeat(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		seen := map[int64]bool{}
		for range 5 {
			g, err := s.NextGeneration(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if seen[g] {
				t.Fatalf("generation %d repeated", g)
			}
			seen[g] = true
		}
	})
}
