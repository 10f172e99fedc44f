package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime"
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
	// The API decided the owner before this deploy took the solution's
	// lock; another provider's first deploy may have claimed the name
	// since.
	owner := req.Owner
	if prev != nil {
		if owner != "" && prev.Owner != owner {
			return nil, &solution.OwnedError{Name: m.Name}
		}
		owner = prev.Owner
	}
	gen, err := c.store.NextGeneration(ctx)
	if err != nil {
		return nil, err
	}
	images, digests, err := c.images(ctx, m, owner, req.Contexts, gen, progress)
	if err != nil {
		return nil, err
	}
	c.recordGeneration(ctx, &store.Generation{Solution: m.Name, Generation: gen, Manifest: m, Images: images, Digests: digests,
		DeployedBy: req.By, RollbackOf: req.RollbackOf, Outcome: store.OutcomeDeploying})

	rec := &store.Solution{Name: m.Name, Manifest: m, Owner: owner, Images: images, Generation: gen, State: string(solution.Starting), SkipChecks: req.SkipChecks}
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
	n := replicasFor(m)
	handedOver := !first && c.handOver(ctx, s, prev, m, progress)
	addrs, err := c.start(ctx, rec, sp, n, req.SkipChecks, progress)
	if err != nil {
		c.setOutcome(ctx, m.Name, gen, store.OutcomeFailed, err.Error())
		if !first {
			// The previous generation goes on serving; the new one is
			// removed so that nothing is left half-replaced.
			_ = c.rt.Prune(context.WithoutCancel(ctx), m.Name, prev.Generation)
			// Its images go unless a kept generation runs them: a failed
			// rollback's are those of the generation it tried to serve.
			c.retire(ctx, m.Name, prev.Images)
			if handedOver {
				c.takeBack(context.WithoutCancel(ctx), s, prev)
			}
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
	c.setOutcome(ctx, m.Name, gen, store.OutcomeServing, "")
	if prev != nil && prev.Generation != 0 && prev.Generation != gen {
		c.setOutcome(ctx, m.Name, prev.Generation, store.OutcomeReplaced, "")
	}
	c.retire(ctx, m.Name, images)
	return c.Get(ctx, m.Name)
}

// images builds or fetches each component's image for generation gen of
// a solution of owner (whose registry logins pull), and returns the references and their digests (the engine's image IDs).
func (c *Controller) images(ctx context.Context, m *spec.Manifest, owner string, contexts map[string]io.Reader, gen int64, progress solution.Progress) (images, digests map[string]string, err error) {
	images, digests = map[string]string{}, map[string]string{}
	for _, comp := range m.Components {
		if comp.Build != "" {
			tag := fmt.Sprintf("%s/%s-%s:g%d", c.cfg.ImagePrefix, m.Name, comp.Name, gen)
			progress(comp.Name, "building "+tag)
			if err := c.builder.Build(ctx, contexts[comp.Name], comp.Dockerfile, tag, func(line string) { progress(comp.Name, line) }); err != nil {
				return nil, nil, &solution.InputError{Msg: fmt.Sprintf("component %s: %v\nfix: the build failed at the step named; run `docker build %s` to see it fail with its whole output, and fix the Dockerfile", comp.Name, err, comp.Build)}
			}
			images[comp.Name] = tag
		} else {
			progress(comp.Name, "using image "+comp.Image)
			err := c.ownBuilt(ctx, m.Name, comp.Image)
			if err == nil {
				err = c.fetchImage(ctx, owner, comp.Image, func(line string) { progress(comp.Name, line) })
			}
			var ie *solution.InputError
			if errors.As(err, &ie) {
				return nil, nil, &solution.InputError{Msg: fmt.Sprintf("component %s: %s", comp.Name, ie.Msg)}
			}
			if err != nil {
				return nil, nil, &solution.InputError{Msg: fmt.Sprintf("component %s: %v\nfix: build or load the image on aim's engine first (docker build -t %s ., or docker load), or name one from a registry the engine can pull from", comp.Name, err, comp.Image)}
			}
			images[comp.Name] = comp.Image
		}
		if id, err := c.builder.ImageID(ctx, images[comp.Name]); err == nil {
			digests[comp.Name] = id
		}
	}
	return images, digests, nil
}

// start runs a new generation and waits until it answers and passes the
// fast checks (unless skipChecks), recording the report in rec. Beside
// it, throwaway trial replicas show how each component stops on SIGTERM
// and what it writes.
func (c *Controller) start(ctx context.Context, rec *store.Solution, sp runtime.Spec, n int, skipChecks bool, progress solution.Progress) (map[string][]string, error) {
	progress("", "starting containers")
	if err := commandError(c.rt.Apply(ctx, sp, n)); err != nil {
		return nil, err
	}
	var tr *trials
	if !skipChecks {
		tr = c.startTrials(ctx, sp)
	}
	defer tr.stop()
	progress("", "waiting for the solution to answer on port 8080")
	addrs, err := c.waitReady(ctx, sp, n)
	if err != nil || skipChecks {
		return addrs, err
	}
	progress("", "checking the packaging standard")
	if tr != nil {
		progress("", "judging, from a throwaway replica, how it stops on SIGTERM and what it writes")
	}
	report, err := c.fastCheck(ctx, rec.Manifest, addrs, tr)
	rec.Check = report
	return addrs, err
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
	// Its images, and those kept for rollbacks, each once.
	imgs := map[string]string{}
	if rec != nil {
		maps.Copy(imgs, rec.Images)
	}
	if gens, err := c.store.ListGenerations(ctx, name, 0); err == nil {
		for _, g := range gens {
			for comp, ref := range g.Images {
				imgs[fmt.Sprint(g.Generation, "/", comp)] = ref
			}
		}
	}
	seen := map[string]bool{}
	for k, ref := range imgs {
		if seen[ref] {
			delete(imgs, k)
		}
		seen[ref] = true
	}
	c.removeImages(ctx, imgs, nil)
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

// handOver stops the previous generation before a new one starts when
// either mounts a volume read-write: a volume has one writer at a time
// (two would corrupt what most programs keep, and Prometheus, for one,
// locks its directory). Visitors meet the starting page meanwhile, as at
// a wake. It reports whether it stopped anything.
func (c *Controller) handOver(ctx context.Context, s *tracked, prev *store.Solution, m *spec.Manifest, progress solution.Progress) bool {
	if prev.Manifest == nil || !m.HasWriter() && !prev.Manifest.HasWriter() {
		return false
	}
	if _, st, _ := s.snapshot(); st != solution.Ready {
		return false
	}
	progress("", "stopping the previous version first: a read-write volume has one writer at a time")
	s.set(solution.Starting, "")
	c.publish(prev, solution.Starting, "", nil)
	if err := c.rt.Scale(ctx, c.runtimeSpec(prev), 0); err != nil {
		c.log.Warn("stopping the previous generation", "solution", prev.Name, "err", err)
	}
	return true
}

// takeBack starts the previous generation again after a new one that
// handOver made room for did not start.
func (c *Controller) takeBack(ctx context.Context, s *tracked, prev *store.Solution) {
	sp, n := c.runtimeSpec(prev), replicasFor(prev.Manifest)
	err := c.rt.Scale(ctx, sp, n)
	var addrs map[string][]string
	if err == nil {
		addrs, err = c.waitReady(ctx, sp, n)
	}
	if err != nil {
		c.fail(ctx, s, prev, fmt.Sprintf("the previous version did not start again after a failed update: %v", err))
		return
	}
	s.mu.Lock()
	s.rec, s.state, s.reason, s.replicas = prev, solution.Ready, "", n
	s.mu.Unlock()
	c.publish(prev, solution.Ready, "", addrs)
}
