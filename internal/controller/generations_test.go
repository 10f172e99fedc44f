package controller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// TestGenerationsAndRollback: each deploy is recorded; the images of the
// last KeepGenerations that served stay; a rollback serves an earlier one
// again without a build; a rollback that cannot be served leaves the
// current generation serving.
func TestGenerationsAndRollback(t *testing.T) {
	h := newHarness(t, Config{KeepGenerations: 2})
	ctx := context.Background()
	for range 3 {
		h.deploy(t, built)
	}
	gens, err := h.c.History(ctx, "hello", 0)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, g := range gens {
		outcomes = append(outcomes, string(g.Outcome))
	}
	if !slices.Equal(outcomes, []string{"serving", "replaced", "replaced"}) || gens[0].Digests["web"] == "" {
		t.Fatalf("history %v, digests %v", outcomes, gens[0].Digests)
	}
	// Keep 2: generation 1's image goes, 2's stays.
	if got := h.b.removedImages(); !slices.Equal(got, []string{"aim.local/aim/hello-web:g1"}) {
		t.Errorf("removed %v, want generation 1's image", got)
	}

	builds := len(h.b.built)
	info, err := h.c.Rollback(ctx, "hello", 0, "admin token", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.b.built) != builds {
		t.Errorf("a rollback built %v", h.b.built[builds:])
	}
	if info.Generation != 4 || info.Components[0].Image != "aim.local/aim/hello-web:g2" {
		t.Errorf("rolled back to %d running %s, want generation 4 running g2's image", info.Generation, info.Components[0].Image)
	}
	h.wantServing(t, 4, 1)
	g4, _ := h.st.GetGeneration(ctx, "hello", 4)
	if g4.RollbackOf != 2 || g4.DeployedBy != "admin token" || g4.Outcome != store.OutcomeServing {
		t.Errorf("generation 4: %+v", g4)
	}

	for _, tc := range []struct {
		name string
		to   int64
		msg  string
	}{
		{"its image is gone", 1, "the image aim.local/aim/hello-web:g1 of component web is gone"},
		{"the one serving", 4, "is the one serving"},
		{"no such generation", 9, "has no generation 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.c.Rollback(ctx, "hello", tc.to, "", nil)
			var ie *solution.InputError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want an InputError with %q", err, tc.msg)
			}
			h.wantServing(t, 4, 1)
		})
	}

	// A generation that never served cannot be rolled back to.
	h.rt.plan = all(behaviour{mode: exits, code: 1})
	if _, err := h.c.Deploy(ctx, request(manifest(t, built)), nil); err == nil {
		t.Fatal("a deploy whose replicas exit succeeded")
	}
	h.rt.plan = all(behaviour{})
	failed, _ := h.c.History(ctx, "hello", 1)
	if failed[0].Outcome != store.OutcomeFailed || failed[0].Reason == "" {
		t.Fatalf("the failed deploy's record: %+v", failed[0])
	}
	if _, err := h.c.Rollback(ctx, "hello", failed[0].Generation, "", nil); err == nil || !strings.Contains(err.Error(), "never served") {
		t.Errorf("rollback to a failed generation: %v", err)
	}
	h.wantServing(t, 4, 1)

	// A rollback that does not start leaves its target's image for the
	// next try: it is a kept generation's, not the failed one's to remove.
	h.rt.plan = all(behaviour{mode: exits, code: 1})
	if _, err := h.c.Rollback(ctx, "hello", 3, "", nil); err == nil {
		t.Fatal("a rollback whose replicas exit succeeded")
	}
	if got := h.b.removedImages(); slices.Contains(got, "aim.local/aim/hello-web:g3") {
		t.Errorf("the failed rollback removed generation 3's image: removed %v", got)
	}
	h.rt.plan = all(behaviour{})
	if _, err := h.c.Rollback(ctx, "hello", 3, "", nil); err != nil {
		t.Errorf("rolling back to 3 again: %v", err)
	}

	if _, err := h.c.Rollback(ctx, "nope", 0, "", nil); !errors.Is(err, solution.ErrNotFound) {
		t.Errorf("rollback of an unknown solution: %v", err)
	}
}
