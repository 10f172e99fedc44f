package controller

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
)

func TestRemove(t *testing.T) {
	cases := []struct {
		name string
		// sleep puts the solution to sleep before the removal.
		sleep bool
	}{
		{name: "ready"},
		{name: "sleeping", sleep: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			h.deploy(t, pair)
			if c.sleep {
				if err := h.c.Sleep(context.Background(), "hello"); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.c.Remove(context.Background(), "hello"); err != nil {
				t.Fatal(err)
			}
			if rs, ok := h.routes.route("hello"); ok {
				t.Errorf("route left: %+v", rs)
			}
			if gens := h.rt.generations("hello"); len(gens) != 0 {
				t.Errorf("containers left of generations %v", gens)
			}
			// Only the image aim built goes; the pulled one may serve others.
			if got := h.b.removedImages(); !slices.Equal(got, []string{"aim.local/aim/hello-web:g1"}) {
				t.Errorf("removed images %v, want the built one only", got)
			}
			if rec := h.st.rec("hello"); rec != nil {
				t.Errorf("store still has %+v", rec)
			}
			if _, err := h.c.Get(context.Background(), "hello"); !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("Get = %v, want not found", err)
			}
			if l := h.c.List(context.Background()); len(l) != 0 {
				t.Errorf("List = %+v", l)
			}
			if err := h.c.Remove(context.Background(), "hello"); !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("removing again = %v, want not found", err)
			}
		})
	}
}

// Regression: a deploy that waited for a removal of the same solution
// deployed into the record the removal had dropped, so the solution
// served while Get and List said it did not exist.
func TestDeployAfterRemoval(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.deploy(t, built)
	h.rt.removeGate = make(chan struct{})
	removed := make(chan error)
	go func() { removed <- h.c.Remove(context.Background(), "hello") }()
	eventually(t, "the removal deletes the route", func() bool { _, ok := h.routes.route("hello"); return !ok })
	deployed := make(chan error)
	go func() {
		_, err := h.c.Deploy(context.Background(), request(manifest(t, built)), nil)
		deployed <- err
	}()
	// The deploy shows nothing while it waits for the removal's lock;
	// give it time to get there.
	time.Sleep(50 * time.Millisecond)
	close(h.rt.removeGate)
	if err := <-removed; err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := <-deployed; err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	info, err := h.c.Get(context.Background(), "hello")
	if err != nil {
		t.Fatalf("Get after the deploy: %v", err)
	}
	if info.Generation != 2 || info.State != solution.Ready {
		t.Errorf("info = generation %d %s, want 2 ready", info.Generation, info.State)
	}
	if l := h.c.List(context.Background()); len(l) != 1 {
		t.Errorf("List = %+v, want hello", l)
	}
	if rs, _ := h.routes.route("hello"); rs.State != gateway.StateReady {
		t.Errorf("route = %+v", rs)
	}
}
