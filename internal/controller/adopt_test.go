package controller

import (
	"context"
	"fmt"
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
		ghost bool
		// history is hello's generations and what the store says became
		// of each; trial leaves a deploy's trial container.
		history map[int64]store.Outcome
		trial   bool
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
		// Suite case 6 (docs/security.md): the engine kept the first
		// deploy's replica and its trial running while aim was down.
		name: "interrupted first deploy", state: solution.Deploying, seed: []int64{4}, settled: gateway.StateFailed,
		history: map[int64]store.Outcome{4: store.OutcomeDeploying}, trial: true,
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
			h.wantOutcome(t, 4, store.OutcomeFailed, interrupted)
			eventually(t, "the replica is stopped", func() bool { return len(h.rt.running("hello", "web", 4)) == 0 })
			if gens := h.rt.generations("hello"); !slices.Equal(gens, []int64{4}) || h.rt.trialsOf("hello") != 0 {
				t.Errorf("generations %v and %d trials, want the stopped replica of 4 kept for aim logs and no trial", gens, h.rt.trialsOf("hello"))
			}
		},
	}, {
		name: "interrupted update", state: solution.Ready, seed: []int64{4, 5}, settled: gateway.StateReady, trial: true,
		history: map[int64]store.Outcome{4: store.OutcomeServing, 5: store.OutcomeDeploying},
		check: func(t *testing.T, h *harness, _ []string) {
			h.wantServing(t, 4, 1)
			if gens := h.rt.generations("hello"); !slices.Equal(gens, []int64{4}) || h.rt.trialsOf("hello") != 0 {
				t.Errorf("generations %v and %d trials, want 4 alone", gens, h.rt.trialsOf("hello"))
			}
			h.wantOutcome(t, 5, store.OutcomeFailed, "interrupted when aim stopped, before it answered; generation 4 stays the current one")
			h.wantOutcome(t, 4, store.OutcomeServing, "")
			if got := h.b.removedImages(); !slices.Equal(got, []string{"aim.local/aim/hello-web:g5"}) {
				t.Errorf("removed images %v, want the interrupted generation's", got)
			}
		},
	}, {
		// aim stopped after the record named generation 4, before it
		// removed 3 and recorded the outcomes.
		name: "interrupted update that had finished", state: solution.Ready, seed: []int64{3, 4}, settled: gateway.StateReady,
		history: map[int64]store.Outcome{3: store.OutcomeServing, 4: store.OutcomeDeploying},
		check: func(t *testing.T, h *harness, _ []string) {
			h.wantServing(t, 4, 1)
			if gens := h.rt.generations("hello"); !slices.Equal(gens, []int64{4}) {
				t.Errorf("generations %v, want [4]", gens)
			}
			h.wantOutcome(t, 4, store.OutcomeServing, "")
			h.wantOutcome(t, 3, store.OutcomeReplaced, "")
		},
	}, {
		name: "sleeping", state: solution.Sleeping, settled: gateway.StateSleeping,
		check: func(t *testing.T, h *harness, _ []string) {
			if calls := h.rt.callLog(); len(calls) != 0 {
				t.Errorf("runtime calls %v; a sleeping solution stays asleep", calls)
			}
		},
	}, {
		// The engine kept running what a wake started while aim was down.
		name: "interrupted wake", state: solution.Sleeping, seed: []int64{4}, settled: gateway.StateSleeping,
		check: func(t *testing.T, h *harness, _ []string) {
			eventually(t, "the replica is stopped", func() bool { return len(h.rt.running("hello", "web", 4)) == 0 })
			if calls := h.rt.callLog(); !slices.Equal(calls, []string{"scale g4 x0"}) {
				t.Errorf("runtime calls %v, want generation 4 stopped", calls)
			}
			if st, _ := h.state(t, "hello"); st != solution.Sleeping {
				t.Errorf("state = %s, want sleeping", st)
			}
		},
	}, {
		// A trial the engine finished creating after aim had stopped, once
		// Adopt had looked: the first resync removes it.
		name: "a trial created after the start", state: solution.Ready, seed: []int64{4}, settled: gateway.StateReady,
		check: func(t *testing.T, h *harness, _ []string) {
			h.rt.seedTrial("hello")
			// A resync skips a solution whose restore still holds it.
			eventually(t, "a resync removes the trial", func() bool {
				h.c.resyncAll(context.Background())
				return h.rt.trialsOf("hello") == 0
			})
			h.wantServing(t, 4, 1)
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
			for gen, o := range c.history {
				g := &store.Generation{Solution: "hello", Generation: gen, Manifest: m, Outcome: o,
					Images: map[string]string{"web": fmt.Sprintf("aim.local/aim/hello-web:g%d", gen)}}
				if err := h.st.PutGeneration(context.Background(), g); err != nil {
					t.Fatal(err)
				}
			}
			if c.trial {
				h.rt.seedTrial("hello")
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

// wantOutcome checks what the store says became of generation gen of
// hello.
func (h *harness) wantOutcome(t *testing.T, gen int64, o store.Outcome, reason string) {
	t.Helper()
	g, err := h.st.GetGeneration(context.Background(), "hello", gen)
	if err != nil || g.Outcome != o || g.Reason != reason {
		t.Errorf("generation %d: %+v %v; want %s (%q)", gen, g, err, o, reason)
	}
}

// TestAdoptInterruptedBeforeSave: aim stopped during a first deploy
// after it recorded the generation, before it saved the solution. The
// generation is failed and its image removed; no solution appears.
func TestAdoptInterruptedBeforeSave(t *testing.T) {
	h := newHarness(t, Config{})
	ctx := context.Background()
	g := &store.Generation{Solution: "new", Generation: 7, Manifest: manifest(t, built), Outcome: store.OutcomeDeploying,
		Images: map[string]string{"web": "aim.local/aim/new-web:g7"}}
	if err := h.st.PutGeneration(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Adopt(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := h.st.GetGeneration(ctx, "new", 7)
	if want := "the deploy was interrupted when aim stopped, before the solution was saved"; got.Outcome != store.OutcomeFailed || got.Reason != want {
		t.Errorf("generation 7: %s (%q), want failed (%q)", got.Outcome, got.Reason, want)
	}
	if imgs := h.b.removedImages(); !slices.Equal(imgs, []string{"aim.local/aim/new-web:g7"}) {
		t.Errorf("removed images %v", imgs)
	}
	if _, ok := h.routes.route("new"); ok {
		t.Errorf("a route for a solution never saved")
	}
}
