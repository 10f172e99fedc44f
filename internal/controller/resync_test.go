package controller

import (
	"context"
	"testing"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
)

// TestResync follows what the engine does to a serving solution's
// containers after the deploy: the routes follow the runtime.
func TestResync(t *testing.T) {
	const crashed = "component web exited with code 1 (restarted 2 times; the engine retries with back-off)"
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t, Config{})
	h.deploy(t, built)

	h.rt.crash("hello", "web", 1, 0, 1, 2)
	h.c.resyncAll(ctx)
	rs, _ := h.routes.route("hello")
	if rs.State != gateway.StateReady || rs.Reason != crashed || len(addrs(rs, "web")) != 0 {
		t.Errorf("route after a crash = %s (%q) to %v; want ready, no address, the crash as reason", rs.State, rs.Reason, addrs(rs, "web"))
	}
	if rec := h.st.rec("hello"); rec.State != string(solution.Ready) || rec.LastError != crashed {
		t.Errorf("store has %s (%q)", rec.State, rec.LastError)
	}

	h.rt.restart("hello", "web", 1, 0)
	h.c.resyncAll(ctx)
	if rs, _ := h.routes.route("hello"); rs.Reason != "" {
		t.Errorf("route reason after the restart = %q", rs.Reason)
	}
	h.wantServing(t, 1, 1)

	// Someone removed the containers behind aim's back.
	if err := h.rt.Remove(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	h.c.resyncAll(ctx)
	eventually(t, "generation 1 runs again", func() bool { return len(h.rt.running("hello", "web", 1)) == 1 })
	eventually(t, "the route follows", func() bool {
		rs, _ := h.routes.route("hello")
		a := addrs(rs, "web")
		return len(a) == 1 && a[0] == h.rt.running("hello", "web", 1)[0]
	})
	h.wantServing(t, 1, 1)
}
