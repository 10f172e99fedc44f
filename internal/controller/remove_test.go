package controller

import (
	"context"
	"errors"
	"slices"
	"testing"

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
