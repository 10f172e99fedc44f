package controller

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// TestAdopt starts a controller on a store and a runtime that a previous
// aim left: hello is stored at generation 4.
func TestAdopt(t *testing.T) {
	const interrupted = "the deploy was interrupted when aim stopped; deploy again"
	cases := []struct {
		name      string
		state     solution.State
		lastError string
		// seed are the generations of hello that have a running replica.
		seed []int64
		// ghost is a solution the runtime has and the store doesn't.
		ghost   bool
		replica behaviour
		// settled says the adoption is done.
		settled gateway.State
		check   func(t *testing.T, h *harness, seeded []string)
	}{{
		name: "ready with live replicas", state: solution.Ready, seed: []int64{4}, settled: gateway.StateReady,
		check: func(t *testing.T, h *harness, seeded []string) {
			h.wantServing(t, 4, 1)
			rs, _ := h.routes.route("hello")
			if !slices.Equal(addrs(rs, "web"), seeded) {
				t.Errorf("route sends web to %v, want the replica that ran, %v", addrs(rs, "web"), seeded)
			}
		},
	}, {
		name: "ready with its containers gone", state: solution.Ready, settled: gateway.StateReady,
		check: func(t *testing.T, h *harness, _ []string) {
			h.wantServing(t, 4, 1)
			if calls := h.rt.callLog(); !slices.Contains(calls, "scale g4 x1") {
				t.Errorf("runtime calls %v, want generation 4 started", calls)
			}
		},
	}, {
		name: "ready with a replica that no longer starts", state: solution.Ready, settled: gateway.StateFailed,
		replica: behaviour{mode: exits, code: 1},
		check: func(t *testing.T, h *harness, _ []string) {
			st, reason := h.state(t, "hello")
			if st != solution.Failed || !strings.HasPrefix(reason, "component web exited while starting with code 1") {
				t.Errorf("state = %s (%q)", st, reason)
			}
			if rec := h.st.rec("hello"); rec.State != string(solution.Failed) || rec.LastError != reason {
				t.Errorf("store has %s (%q)", rec.State, rec.LastError)
			}
		},
	}, {
		name: "interrupted first deploy", state: solution.Deploying, seed: []int64{4}, settled: gateway.StateFailed,
		check: func(t *testing.T, h *harness, _ []string) {
			if st, reason := h.state(t, "hello"); st != solution.Failed || reason != interrupted {
				t.Errorf("state = %s (%q), want failed: %s", st, reason, interrupted)
			}
			if rec := h.st.rec("hello"); rec.State != string(solution.Failed) || rec.LastError != interrupted {
				t.Errorf("store has %s (%q)", rec.State, rec.LastError)
			}
			if rs, _ := h.routes.route("hello"); rs.Reason != interrupted {
				t.Errorf("route reason = %q", rs.Reason)
			}
		},
	}, {
		name: "sleeping", state: solution.Sleeping, settled: gateway.StateSleeping,
		check: func(t *testing.T, h *harness, _ []string) {
			if calls := h.rt.callLog(); len(calls) != 0 {
				t.Errorf("runtime calls %v; a sleeping solution stays asleep", calls)
			}
		},
	}, {
		name: "failed", state: solution.Failed, lastError: "component web exited", settled: gateway.StateFailed,
		check: func(t *testing.T, h *harness, _ []string) {
			if rs, _ := h.routes.route("hello"); rs.Reason != "component web exited" {
				t.Errorf("route reason = %q", rs.Reason)
			}
		},
	}, {
		name: "leftovers of an update and of a removed solution", state: solution.Ready, seed: []int64{3, 4}, ghost: true,
		settled: gateway.StateReady,
		check: func(t *testing.T, h *harness, _ []string) {
			calls := h.rt.callLog()
			if !slices.Contains(calls, "prune keep g4") || !slices.Contains(calls, "remove ghost") {
				t.Errorf("runtime calls %v, want generation 3 pruned and ghost removed", calls)
			}
			if gens := h.rt.generations("hello"); !slices.Equal(gens, []int64{4}) {
				t.Errorf("generations %v, want [4]", gens)
			}
			h.wantServing(t, 4, 1)
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			m := manifest(t, built)
			rec := &store.Solution{Name: "hello", Manifest: m, Images: map[string]string{"web": "aim.local/aim/hello-web:g4"},
				Generation: 4, State: string(c.state), LastError: c.lastError}
			if err := h.st.Put(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			for _, gen := range c.seed {
				h.rt.seed(runtime.Spec{Manifest: m, Images: rec.Images, Generation: gen}, 1)
			}
			if c.ghost {
				h.rt.seed(runtime.Spec{Manifest: manifest(t, "{name: ghost, components: [{name: web, image: x}]}"), Generation: 1}, 1)
			}
			seeded := h.rt.running("hello", "web", 4)
			h.rt.mu.Lock()
			h.rt.plan = all(c.replica)
			h.rt.mu.Unlock()

			if err := h.c.Adopt(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The route is there when Adopt returns, before the gateway
			// serves.
			if rs, ok := h.routes.route("hello"); !ok || rs.Name != "hello" {
				t.Fatalf("no route for hello after Adopt")
			}
			eventually(t, "the route is "+string(c.settled), func() bool {
				rs, _ := h.routes.route("hello")
				return rs.State == c.settled
			})
			if c.state == solution.Ready {
				if first := h.routes.states("hello")[0]; first != gateway.StateStarting {
					t.Errorf("first route state = %s, want starting until the replicas answer", first)
				}
			}
			c.check(t, h, seeded)
		})
	}
}
