package store

import (
	"context"
	"errors"
	"testing"

	"github.com/aimhub/aim/internal/spec"
)

func TestGenerations(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		m := &spec.Manifest{Name: "shop", Components: []spec.Component{{Name: "web", Image: "x:1"}}}
		if un, err := s.Unfinished(ctx); err != nil || len(un) != 0 {
			t.Fatalf("unfinished before any deploy: %+v %v", un, err)
		}
		for i, o := range []Outcome{OutcomeReplaced, OutcomeFailed, OutcomeServing, OutcomeDeploying} {
			g := &Generation{Solution: "shop", Generation: int64(i + 1), Manifest: m, Images: map[string]string{"web": "aim.local/shop-web:g" + string(rune('1'+i))},
				Digests: map[string]string{"web": "sha256:abc"}, DeployedBy: "token laptop", Outcome: OutcomeDeploying}
			if err := s.PutGeneration(ctx, g); err != nil {
				t.Fatal(err)
			}
			if err := s.SetOutcome(ctx, "shop", g.Generation, o, "why"); err != nil {
				t.Fatal(err)
			}
		}
		// The one left deploying is unfinished, with what it ran.
		un, err := s.Unfinished(ctx)
		if err != nil || len(un) != 1 || un[0].Generation != 4 || un[0].Solution != "shop" || un[0].Images["web"] != "aim.local/shop-web:g4" {
			t.Fatalf("unfinished: %+v %v", un, err)
		}
		if err := s.SetOutcome(ctx, "shop", 4, OutcomeFailed, "interrupted"); err != nil {
			t.Fatal(err)
		}
		if un, _ := s.Unfinished(ctx); len(un) != 0 {
			t.Errorf("unfinished after its outcome: %+v", un)
		}
		gs, err := s.ListGenerations(ctx, "shop", 2)
		if err != nil || len(gs) != 2 || gs[0].Generation != 4 || gs[1].Generation != 3 || gs[1].Outcome != OutcomeServing {
			t.Fatalf("%+v %v", gs, err)
		}
		g, err := s.GetGeneration(ctx, "shop", 1)
		if err != nil || g.Images["web"] != "aim.local/shop-web:g1" || g.Digests["web"] != "sha256:abc" || g.DeployedBy != "token laptop" ||
			g.Manifest.Components[0].Image != "x:1" || g.Reason != "why" {
			t.Fatalf("%+v %v", g, err)
		}
		if _, err := s.GetGeneration(ctx, "shop", 9); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing generation: %v", err)
		}
		if err := s.SetOutcome(ctx, "shop", 9, OutcomeFailed, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("outcome of a missing generation: %v", err)
		}
		if err := s.Put(ctx, &Solution{Name: "shop", Manifest: m, State: "ready"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		if gs, _ := s.ListGenerations(ctx, "shop", 0); len(gs) != 0 {
			t.Errorf("a removed solution keeps %d generations", len(gs))
		}
	})
}
