package controller

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aimhub/aim/internal/scaler"
	"github.com/aimhub/aim/internal/solution"
)

// wakeOp is one wake in flight; every request for the solution waits on
// the same one, so the containers start exactly once.
type wakeOp struct {
	done chan struct{}
	err  error
}

// Wake implements gateway.Waker: it starts a sleeping solution once, however
// many requests ask at the same time, and returns when it answers. The
// wake goes on if the request that triggered it goes away.
func (c *Controller) Wake(ctx context.Context, name string) error {
	s := c.get(name)
	if s == nil {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	s.mu.Lock()
	switch {
	case s.state == solution.Ready:
		s.mu.Unlock()
		return nil
	case s.wake == nil:
		s.wake = &wakeOp{done: make(chan struct{})}
		go c.doWake(name, s, s.wake)
	}
	op := s.wake
	s.mu.Unlock()
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Controller) doWake(name string, s *tracked, op *wakeOp) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WakeTimeout)
	defer cancel()
	defer func() {
		s.mu.Lock()
		s.wake = nil
		s.mu.Unlock()
		close(op.done)
	}()
	s.op.Lock()
	defer s.op.Unlock()
	rec, st, _ := s.snapshot()
	if rec == nil {
		// Nothing was deployed (the first build failed), or the solution
		// was removed while this wake waited for the removal.
		op.err = fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
		return
	}
	if st == solution.Ready {
		return
	}
	s.set(solution.Waking, "")
	start := time.Now()
	sp := c.runtimeSpec(rec)
	n := replicasFor(rec.Manifest)
	err := commandError(c.rt.Scale(ctx, sp, n))
	started := time.Now()
	var addrs map[string][]string
	if err == nil {
		addrs, err = c.waitReady(ctx, sp, n)
	}
	c.cfg.Metrics.Wake(rec.Name, err == nil, started.Sub(start).Seconds(), time.Since(started).Seconds())
	if err != nil {
		// Stopped again, so that the next request tries afresh.
		_ = c.rt.Scale(context.WithoutCancel(ctx), sp, 0)
		s.set(solution.Sleeping, err.Error())
		c.publish(rec, solution.Sleeping, err.Error(), nil)
		op.err = &solution.WakeError{Msg: err.Error()}
		return
	}
	s.set(solution.Ready, "")
	s.mu.Lock()
	s.replicas = n
	s.mu.Unlock()
	_ = c.store.SetState(ctx, rec.Name, string(solution.Ready), "")
	c.publish(rec, solution.Ready, "", addrs)
	c.log.Info("woke", "solution", rec.Name, "took", time.Since(start))
}

// Sleep stops a solution's containers; the next request wakes it.
func (c *Controller) Sleep(ctx context.Context, name string) error {
	s := c.get(name)
	if s == nil {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	s.op.Lock()
	defer s.op.Unlock()
	rec, st, _ := s.snapshot()
	if st != solution.Ready {
		return nil
	}
	// Route first, so that new requests wait for a wake instead of
	// hitting containers that are stopping; the wake they ask for waits
	// for the stop to finish. The state says "sleeping" only once the
	// containers have stopped.
	s.set(solution.Stopping, "")
	c.publish(rec, solution.Sleeping, "", nil)
	if err := c.rt.Scale(ctx, c.runtimeSpec(rec), 0); err != nil {
		return fmt.Errorf("stopping %s: %w", name, err)
	}
	s.set(solution.Sleeping, "")
	return c.store.SetState(ctx, name, string(solution.Sleeping), "")
}

// Awake lists the solutions that are serving, with their idle timeouts,
// for the scaler.
func (c *Controller) Awake() []scaler.Awake {
	c.mu.Lock()
	sols := make([]*tracked, 0, len(c.sols))
	for _, s := range c.sols {
		sols = append(sols, s)
	}
	c.mu.Unlock()
	var out []scaler.Awake
	for _, s := range sols {
		rec, st, _ := s.snapshot()
		if st != solution.Ready || rec == nil {
			continue
		}
		m := rec.Manifest
		out = append(out, scaler.Awake{
			Name: rec.Name, Idle: m.IdleTimeout(c.cfg.IdleTimeout),
			Min: m.Scaling.Min, Max: m.Scaling.Max, Concurrency: cmp.Or(m.Scaling.Concurrency, c.cfg.Defaults.Concurrency),
			Replicas: s.currentReplicas(m),
		})
	}
	return out
}
