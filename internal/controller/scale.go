package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
)

// drainPause is how long a replica leaving the routes keeps running before
// it is stopped. Requests the gateway already sent to it finish either way
// (the engine sends SIGTERM and waits), but a pause lets connections that
// picked it just before the route changed arrive first.
const drainPause = 200 * time.Millisecond

// ScaleTo sets how many replicas of each component an awake solution
// runs, within its manifest's scaling.min and scaling.max. New replicas
// join the routes once they answer, so a scale-up never sends a request to
// a replica that is still starting; replicas leave the routes before they
// stop. A solution that is not serving is left alone.
func (c *Controller) ScaleTo(ctx context.Context, name string, n int) error {
	s := c.get(name)
	if s == nil {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	s.op.Lock()
	defer s.op.Unlock()
	rec, st, _ := s.snapshot()
	if st != solution.Ready || rec == nil {
		return nil
	}
	m := rec.Manifest
	n = max(n, replicasFor(m))
	if m.Scaling.Max > 0 {
		n = min(n, m.Scaling.Max)
	}
	cur := s.currentReplicas(m)
	if n == cur {
		return nil
	}
	sp := c.runtimeSpec(rec)
	if n < cur {
		addrs, err := c.servingAddrs(ctx, sp, n)
		if err != nil {
			return err
		}
		c.publish(rec, solution.Ready, "", addrs)
		s.mu.Lock()
		s.replicas = n
		s.mu.Unlock()
		time.Sleep(drainPause)
		if err := c.rt.Scale(ctx, sp, n); err != nil {
			return fmt.Errorf("scaling %s down to %d: %w", name, n, err)
		}
		c.log.Info("scaled down", "solution", name, "from", cur, "to", n)
		return nil
	}
	start := time.Now()
	if err := c.rt.Scale(ctx, sp, n); err != nil {
		return fmt.Errorf("scaling %s up to %d: %w", name, n, commandError(err))
	}
	addrs, err := c.waitReady(ctx, sp, n)
	if err != nil {
		// The replicas that serve go on serving; the new ones are stopped
		// so that a broken replica doesn't restart forever.
		_ = c.rt.Scale(context.WithoutCancel(ctx), sp, cur)
		return fmt.Errorf("scaling %s up to %d: %w", name, n, err)
	}
	s.mu.Lock()
	s.replicas = n
	s.mu.Unlock()
	c.publish(rec, solution.Ready, "", addrs)
	c.log.Info("scaled up", "solution", name, "from", cur, "to", n, "took", time.Since(start))
	return nil
}

// servingAddrs returns the addresses of the running public replicas
// 0..n-1.
func (c *Controller) servingAddrs(ctx context.Context, sp runtime.Spec, n int) (map[string][]string, error) {
	status, err := c.rt.Inspect(ctx, sp.Manifest.Name)
	if err != nil {
		return nil, fmt.Errorf("inspecting %s: %w", sp.Manifest.Name, err)
	}
	addrs := map[string][]string{}
	for _, comp := range sp.Manifest.PublicComponents() {
		cs, _ := status.Component(comp.Name)
		for _, r := range cs.Serving(sp.Generation, n) {
			if r.Running && r.Addr != "" {
				addrs[comp.Name] = append(addrs[comp.Name], r.Addr)
			}
		}
	}
	return addrs, nil
}
