package controller

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// Deploy builds or fetches the images, starts the new generation, waits
// until it answers and only then routes to it and removes the previous
// one. A failed update leaves the previous generation serving.
func (c *Controller) Deploy(ctx context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error) {
	if progress == nil {
		progress = func(string, string) {}
	}
	m := req.Manifest
	for _, comp := range m.Components {
		if comp.Build != "" && req.Contexts[comp.Name] == nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("component %s builds from %q but no build context was uploaded", comp.Name, comp.Build)}
		}
	}
	s := c.lock(m.Name)
	defer s.op.Unlock()

	prev, _, _ := s.snapshot()
	if prev == nil {
		if got, err := c.store.Get(ctx, m.Name); err == nil {
			prev = got
		}
	}
	gen, err := c.store.NextGeneration(ctx)
	if err != nil {
		return nil, err
	}
	images := map[string]string{}
	for _, comp := range m.Components {
		if comp.Build != "" {
			tag := fmt.Sprintf("%s/%s-%s:g%d", c.cfg.ImagePrefix, m.Name, comp.Name, gen)
			progress(comp.Name, "building "+tag)
			if err := c.builder.Build(ctx, req.Contexts[comp.Name], comp.Dockerfile, tag, func(line string) { progress(comp.Name, line) }); err != nil {
				return nil, &solution.InputError{Msg: fmt.Sprintf("component %s: %v\nfix: the build failed at the step named; run `docker build %s` to see it fail with its whole output, and fix the Dockerfile", comp.Name, err, comp.Build)}
			}
			images[comp.Name] = tag
			continue
		}
		progress(comp.Name, "using image "+comp.Image)
		if err := c.builder.EnsureImage(ctx, comp.Image, func(line string) { progress(comp.Name, line) }); err != nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("component %s: %v\nfix: build or load the image on aim's engine first (docker build -t %s ., or docker load), or name one from a registry the engine can pull from", comp.Name, err, comp.Image)}
		}
		images[comp.Name] = comp.Image
	}

	rec := &store.Solution{Name: m.Name, Manifest: m, Images: images, Generation: gen, State: string(solution.Starting), SkipChecks: req.SkipChecks}
	first := prev == nil || prev.Generation == 0 || prev.State == string(solution.Failed) || prev.State == string(solution.Deploying)
	if first {
		if prev != nil {
			rec.CreatedAt = prev.CreatedAt
		}
		rec.State = string(solution.Deploying)
		if err := c.store.Put(ctx, rec); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.rec, s.state, s.reason = rec, solution.Deploying, ""
		s.mu.Unlock()
		c.publish(rec, solution.Starting, "", nil)
	}

	sp := c.runtimeSpec(rec)
	progress("", "starting containers")
	n := replicasFor(m)
	err = commandError(c.rt.Apply(ctx, sp, n))
	var addrs map[string][]string
	var tr *trials
	if err == nil {
		if !req.SkipChecks {
			tr = c.startTrials(ctx, sp)
		}
		progress("", "waiting for the solution to answer on port 8080")
		addrs, err = c.waitReady(ctx, sp, n)
	}
	if err == nil && !req.SkipChecks {
		progress("", "checking the packaging standard")
		if tr != nil {
			progress("", "judging, from a throwaway replica, how it stops on SIGTERM and what it writes")
		}
		var report []byte
		report, err = c.fastCheck(ctx, m, addrs, tr)
		rec.Check = report
	}
	tr.stop()
	if err != nil {
		if !first {
			// The previous generation goes on serving; the new one is
			// removed so that nothing is left half-replaced.
			_ = c.rt.Prune(context.WithoutCancel(ctx), m.Name, prev.Generation)
			c.removeImages(ctx, images, prev.Images)
			return nil, fmt.Errorf("the new version did not start, the previous one goes on serving: %w", err)
		}
		// Keep the stopped containers so that `aim logs` shows why.
		_ = c.rt.Scale(context.WithoutCancel(ctx), sp, 0)
		c.fail(context.WithoutCancel(ctx), s, rec, err.Error())
		return nil, err
	}

	rec.State = string(solution.Ready)
	if prev != nil {
		rec.CreatedAt = prev.CreatedAt
	}
	if err := c.store.Put(ctx, rec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.rec, s.state, s.reason, s.replicas = rec, solution.Ready, "", n
	s.mu.Unlock()
	c.publish(rec, solution.Ready, "", addrs)
	progress("", "serving at "+c.cfg.URL(m.Name))
	if err := c.rt.Prune(context.WithoutCancel(ctx), m.Name, gen); err != nil {
		c.log.Warn("removing the previous generation", "solution", m.Name, "err", err)
	}
	if prev != nil {
		c.removeImages(ctx, prev.Images, images)
	}
	return c.Get(ctx, m.Name)
}

// removeImages deletes the images aim built in imgs that keep doesn't use.
func (c *Controller) removeImages(ctx context.Context, imgs, keep map[string]string) {
	used := map[string]bool{}
	for _, ref := range keep {
		used[ref] = true
	}
	for _, ref := range imgs {
		if strings.HasPrefix(ref, c.cfg.ImagePrefix+"/") && !used[ref] {
			if err := c.builder.RemoveImage(context.WithoutCancel(ctx), ref); err != nil {
				c.log.Warn("removing image", "image", ref, "err", err)
			}
		}
	}
}

// Remove deletes a solution: its containers, network, images and record.
func (c *Controller) Remove(ctx context.Context, name string) error {
	s := c.get(name)
	if s == nil {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	s.op.Lock()
	defer s.op.Unlock()
	rec, _, _ := s.snapshot()
	c.routes.Delete(name)
	if err := c.rt.Remove(ctx, name); err != nil {
		return err
	}
	if rec != nil {
		c.removeImages(ctx, rec.Images, nil)
	}
	if err := c.store.Delete(ctx, name); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.sols, name)
	c.mu.Unlock()
	// Wakes, sleeps and restores that waited for the removal find nothing
	// to start or route.
	s.mu.Lock()
	s.rec, s.state, s.reason = nil, "", ""
	s.mu.Unlock()
	c.cfg.Metrics.Forget(name)
	return nil
}

// fastCheck runs the checks of the packaging standard that need only HTTP
// against the new generation, which answers by now: the root page, the
// private components' answers, and the recommendations; with the trials'
// results (sigterm, image-tmp, writes-lost), which only warn. A failing
// rule refuses the deploy with the same report `aim check` prints.
func (c *Controller) fastCheck(ctx context.Context, m *spec.Manifest, addrs map[string][]string, tr *trials) ([]byte, error) {
	var targets []check.Target
	for _, comp := range m.Components {
		if a := addrs[comp.Name]; len(a) > 0 {
			targets = append(targets, check.Target{Component: comp, Addr: a[0]})
		}
	}
	rep := check.Fast(ctx, m, targets)
	rep.Add(tr.wait()...)
	var js bytes.Buffer
	if err := check.WriteJSON(&js, rep); err != nil {
		return nil, err
	}
	if rep.Failed() {
		var txt bytes.Buffer
		_ = check.WriteText(&txt, rep)
		return js.Bytes(), &solution.CheckError{Report: txt.String()}
	}
	return js.Bytes(), nil
}
