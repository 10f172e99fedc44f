package controller

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
)

// asleep deploys built and puts it to sleep.
func asleep(t *testing.T, h *harness) {
	t.Helper()
	h.deploy(t, built)
	if err := h.c.Sleep(context.Background(), "hello"); err != nil {
		t.Fatalf("sleeping: %v", err)
	}
}

func count(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func TestWake(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{{
		name: "one wake for many callers",
		run:  func(t *testing.T, h *harness) { wakeMany(t, h, false) },
	}, {
		// Callers that joined a wake share its failure: the next request
		// tries afresh, not each of those that waited.
		name: "one failed wake for many callers",
		run:  func(t *testing.T, h *harness) { wakeMany(t, h, true) },
	}, {
		name: "a ready solution is not woken",
		run: func(t *testing.T, h *harness) {
			h.deploy(t, built)
			before := len(h.rt.callLog())
			if err := h.c.Wake(context.Background(), "hello"); err != nil {
				t.Fatal(err)
			}
			if calls := h.rt.callLog(); len(calls) != before {
				t.Errorf("runtime calls %v after waking a ready solution", calls[before:])
			}
		},
	}, {
		name: "the wake goes on when its caller leaves",
		run: func(t *testing.T, h *harness) {
			asleep(t, h)
			gate := make(chan struct{})
			h.rt.beforeScale = func(int) { <-gate }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error)
			go func() { done <- h.c.Wake(ctx, "hello") }()
			eventually(t, "the wake starts", func() bool { st, _ := h.state(t, "hello"); return st == solution.Waking })
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Wake = %v, want canceled", err)
			}
			close(gate)
			eventually(t, "the solution is ready", func() bool { st, _ := h.state(t, "hello"); return st == solution.Ready })
			h.wantServing(t, 1, 1)
		},
	}, {
		name: "a failed wake sleeps again with the reason",
		run: func(t *testing.T, h *harness) {
			asleep(t, h)
			h.rt.mu.Lock()
			h.rt.plan = all(behaviour{mode: exits, code: 137})
			h.rt.mu.Unlock()
			err := h.c.Wake(context.Background(), "hello")
			var we *solution.WakeError
			if !errors.As(err, &we) || !strings.Contains(we.Msg, "component web exited while starting with code 137") {
				t.Fatalf("Wake = %v, want a WakeError with the exit code", err)
			}
			if st, reason := h.state(t, "hello"); st != solution.Sleeping || reason != we.Msg {
				t.Errorf("state = %s (%q), want sleeping with the reason", st, reason)
			}
			if rs, _ := h.routes.route("hello"); rs.State != gateway.StateSleeping || rs.Reason != we.Msg {
				t.Errorf("route = %s (%q), want sleeping with the reason", rs.State, rs.Reason)
			}
			if calls := h.rt.callLog(); calls[len(calls)-1] != "scale g1 x0" {
				t.Errorf("runtime calls %v, want the failed replicas stopped last", calls)
			}
		},
	}, {
		// Issue 20: a server that answers / long before its API makes a
		// wake that judges by / hand the held requests to an app that
		// answers 503. With a ready.path the wake waits for it.
		name: "a wake waits for the ready.path",
		run: func(t *testing.T, h *harness) {
			var ready atomic.Bool
			ready.Store(true)
			h.rt.plan = all(behaviour{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path != "/-/ready":
					site.ServeHTTP(w, r)
				case !ready.Load():
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			})})
			h.deploy(t, readyAt)
			if err := h.c.Sleep(context.Background(), "hello"); err != nil {
				t.Fatal(err)
			}
			ready.Store(false)
			woke := make(chan error, 1)
			go func() { woke <- h.c.Wake(context.Background(), "hello") }()
			select {
			case err := <-woke:
				t.Fatalf("Wake returned (%v) while GET /-/ready answered 503", err)
			case <-time.After(300 * time.Millisecond):
			}
			if st, _ := h.state(t, "hello"); st != solution.Waking {
				t.Errorf("state while /-/ready answers 503 = %s, want waking", st)
			}
			ready.Store(true)
			if err := <-woke; err != nil {
				t.Fatalf("Wake = %v", err)
			}
			h.wantServing(t, 1, 1)
		},
	}, {
		name: "unknown solution",
		run: func(t *testing.T, h *harness) {
			if err := h.c.Wake(context.Background(), "nope"); !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("Wake = %v, want not found", err)
			}
		},
	}, {
		// Regression: the first build failing left the controller tracking
		// a solution with no record, and waking it (POST .../wake) was a
		// nil dereference in the wake's goroutine, which ended aim.
		name: "a solution whose first build failed",
		run: func(t *testing.T, h *harness) {
			h.b.failBuild = errors.New("no Dockerfile")
			if _, err := h.c.Deploy(context.Background(), request(manifest(t, built)), nil); err == nil {
				t.Fatal("the deploy succeeded")
			}
			if err := h.c.Wake(context.Background(), "hello"); !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("Wake = %v, want not found", err)
			}
		},
	}, {
		// Regression: a wake asked for while the solution was being
		// removed waited for the removal and then started its containers
		// and routed to them again.
		name: "a wake that waited for a removal",
		run: func(t *testing.T, h *harness) {
			asleep(t, h)
			h.rt.removeGate = make(chan struct{})
			removed := make(chan error)
			go func() { removed <- h.c.Remove(context.Background(), "hello") }()
			eventually(t, "the removal deletes the route", func() bool { _, ok := h.routes.route("hello"); return !ok })
			woke := make(chan error)
			go func() { woke <- h.c.Wake(context.Background(), "hello") }()
			s := h.c.get("hello")
			eventually(t, "the wake waits for the removal", func() bool {
				s.mu.Lock()
				defer s.mu.Unlock()
				return s.wake != nil
			})
			close(h.rt.removeGate)
			if err := <-removed; err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if err := <-woke; !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("Wake = %v, want not found", err)
			}
			if rs, ok := h.routes.route("hello"); ok {
				t.Errorf("the removed solution is routed again: %+v", rs)
			}
			if gens := h.rt.generations("hello"); len(gens) != 0 {
				t.Errorf("the removed solution has containers again: generations %v", gens)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, newHarness(t, Config{}))
		})
	}
}

// wakeMany wakes hello from many goroutines at once; the wake fails when
// fail is set.
func wakeMany(t *testing.T, h *harness, fail bool) {
	asleep(t, h)
	if fail {
		h.rt.mu.Lock()
		h.rt.plan = all(behaviour{mode: exits, code: 1})
		h.rt.mu.Unlock()
	}
	// The wake's scale waits until every caller has asked.
	gate, scaling := make(chan struct{}), make(chan struct{}, 10)
	h.rt.beforeScale = func(n int) {
		if n > 0 {
			scaling <- struct{}{}
			<-gate
		}
	}
	const callers = 8
	errs := make(chan error, callers)
	var asked sync.WaitGroup
	for range callers {
		asked.Add(1)
		go func() {
			asked.Done()
			errs <- h.c.Wake(context.Background(), "hello")
		}()
	}
	asked.Wait()
	<-scaling
	// Let the callers that were scheduled last reach Wake.
	time.Sleep(50 * time.Millisecond)
	if st, _ := h.state(t, "hello"); st != solution.Waking {
		t.Errorf("state while waking = %s", st)
	}
	close(gate)
	for range callers {
		err := <-errs
		if fail != errors.As(err, new(*solution.WakeError)) || !fail && err != nil {
			t.Errorf("Wake = %v, want failed: %v", err, fail)
		}
	}
	if n := count(h.rt.callLog(), "scale g1 x1"); n != 1 {
		t.Errorf("the runtime scaled up %d times for %d callers, want once", n, callers)
	}
	if !fail {
		h.wantServing(t, 1, 1)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Config{})
	h.deploy(t, built)
	var (
		atScale gateway.RouteSpec
		state   solution.State
		running []string
	)
	h.rt.beforeScale = func(int) {
		atScale, _ = h.routes.route("hello")
		state, _ = h.state(t, "hello")
		running = h.rt.running("hello", "web", 1)
	}
	if err := h.c.Sleep(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if atScale.State != gateway.StateSleeping || len(addrs(atScale, "web")) != 0 || len(running) != 1 {
		t.Errorf("when the runtime scaled down, the route was %s to %v with %v running; want sleeping, no addresses, the replica still up",
			atScale.State, addrs(atScale, "web"), running)
	}
	if state != solution.Stopping {
		t.Errorf("state while the containers stop = %s, want stopping", state)
	}
	if st, _ := h.state(t, "hello"); st != solution.Sleeping {
		t.Errorf("state = %s, want sleeping", st)
	}
	if rec := h.st.rec("hello"); rec.State != string(solution.Sleeping) {
		t.Errorf("store state = %s, want sleeping", rec.State)
	}
	if got := h.rt.running("hello", "web", 1); len(got) != 0 {
		t.Errorf("running after sleep: %v", got)
	}
	if gens := h.rt.generations("hello"); !slices.Equal(gens, []int64{1}) {
		t.Errorf("generations %v; sleeping keeps the containers for a fast wake", gens)
	}
	if len(h.c.Awake()) != 0 {
		t.Errorf("Awake() = %+v for a sleeping solution", h.c.Awake())
	}

	before := len(h.rt.callLog())
	if err := h.c.Sleep(context.Background(), "hello"); err != nil {
		t.Fatal(err)
	}
	if calls := h.rt.callLog(); len(calls) != before {
		t.Errorf("sleeping a sleeping solution called the runtime: %v", calls[before:])
	}
}
