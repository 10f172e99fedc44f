package controller

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"
)

func TestScaleTo(t *testing.T) {
	const floorOfTwo = `
name: hello
components:
  - name: web
    build: web
scaling: {min: 2, max: 3}
`
	cases := []struct {
		name     string
		manifest string
		// before runs after the deploy.
		before func(t *testing.T, h *harness)
		to     int
		// want is how many replicas serve after, 0 when the solution
		// doesn't serve.
		want    int
		wantErr string
		// calls says whether the runtime is called.
		calls bool
	}{
		{name: "up", manifest: scalable, to: 3, want: 3, calls: true},
		{name: "up beyond scaling.max", manifest: scalable, to: 10, want: 3, calls: true},
		{name: "same", manifest: scalable, to: 1, want: 1},
		{name: "down to zero keeps one", manifest: scalable, to: 0, want: 1},
		{name: "the floor is scaling.min", manifest: floorOfTwo, to: 1, want: 2},
		{name: "down", manifest: scalable, to: 1, want: 1, calls: true,
			before: func(t *testing.T, h *harness) {
				if err := h.c.ScaleTo(context.Background(), "hello", 3); err != nil {
					t.Fatal(err)
				}
				// Replicas leave the route before they stop.
				h.rt.beforeScale = func(int) {
					rs, _ := h.routes.route("hello")
					if got, up := addrs(rs, "web"), h.rt.running("hello", "web", 1); len(got) != 1 || len(up) != 3 {
						t.Errorf("when the runtime scaled down, the route had %v and %v ran; want one address and three running", got, up)
					}
				}
			}},
		{name: "a new replica that does not start", manifest: scalable, to: 2, want: 1, calls: true,
			wantErr: "scaling hello up to 2: component web exited while starting with code 2",
			before: func(t *testing.T, h *harness) {
				h.rt.mu.Lock()
				h.rt.plan = func(_ string, _ int64, index int) behaviour {
					if index > 0 {
						return behaviour{mode: exits, code: 2}
					}
					return behaviour{}
				}
				h.rt.mu.Unlock()
			}},
		{name: "a sleeping solution is left alone", manifest: scalable, to: 3,
			before: func(t *testing.T, h *harness) {
				if err := h.c.Sleep(context.Background(), "hello"); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			h.deploy(t, c.manifest)
			if c.before != nil {
				c.before(t, h)
			}
			before := len(h.rt.callLog())
			err := h.c.ScaleTo(context.Background(), "hello", c.to)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatal(err)
			case c.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), c.wantErr) || !errors.As(err, new(*solution.StartError))):
				t.Fatalf("ScaleTo = %v, want a StartError saying %q", err, c.wantErr)
			}
			if calls := h.rt.callLog()[before:]; c.calls != (len(calls) > 0) {
				t.Errorf("runtime calls %v, want calls: %v", calls, c.calls)
			}
			if c.want == 0 {
				return
			}
			h.wantServing(t, 1, c.want)
			if aw := h.c.Awake(); len(aw) != 1 || aw[0].Replicas != c.want {
				t.Errorf("Awake() = %+v, want hello with %d replicas", aw, c.want)
			}
		})
	}

	t.Run("unknown solution", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Config{})
		if err := h.c.ScaleTo(context.Background(), "nope", 2); !errors.Is(err, solution.ErrNotFound) {
			t.Errorf("ScaleTo = %v, want not found", err)
		}
	})
}
