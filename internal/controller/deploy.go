package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// DeployRequest is one `aim deploy`.
type DeployRequest struct {
	Manifest *spec.Manifest
	// Contexts holds a tar build context for each component that builds.
	Contexts map[string]io.Reader
	// SkipChecks records that the operator skipped conformance checks.
	SkipChecks bool
}

// Progress receives human-readable steps of a deploy.
type Progress func(component, msg string)

// Deploy builds or fetches the images, starts the new generation, waits
// until it answers and only then routes to it and removes the previous
// one. A failed update leaves the previous generation serving.
func (c *Controller) Deploy(ctx context.Context, req DeployRequest, progress Progress) (*Info, error) {
	if progress == nil {
		progress = func(string, string) {}
	}
	m := req.Manifest
	for _, comp := range m.Components {
		if comp.Build != "" && req.Contexts[comp.Name] == nil {
			return nil, &InputError{Msg: fmt.Sprintf("component %s builds from %q but no build context was uploaded", comp.Name, comp.Build)}
		}
	}
	s := c.getOrCreate(m.Name)
	s.op.Lock()
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
				return nil, &InputError{Msg: fmt.Sprintf("component %s: %v", comp.Name, err)}
			}
			images[comp.Name] = tag
			continue
		}
		progress(comp.Name, "using image "+comp.Image)
		if err := c.builder.EnsureImage(ctx, comp.Image, func(line string) { progress(comp.Name, line) }); err != nil {
			return nil, &InputError{Msg: fmt.Sprintf("component %s: %v", comp.Name, err)}
		}
		images[comp.Name] = comp.Image
	}

	rec := &store.Solution{Name: m.Name, Manifest: m, Images: images, Generation: gen, State: string(Starting), SkipChecks: req.SkipChecks}
	first := prev == nil || prev.Generation == 0 || prev.State == string(Failed) || prev.State == string(Deploying)
	if first {
		if prev != nil {
			rec.CreatedAt = prev.CreatedAt
		}
		rec.State = string(Deploying)
		if err := c.store.Put(ctx, rec); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.rec, s.state, s.reason = rec, Deploying, ""
		s.mu.Unlock()
		c.publish(rec, Starting, "", nil)
	}

	sp := c.runtimeSpec(rec)
	progress("", "starting containers")
	n := replicasFor(m)
	err = c.rt.Apply(ctx, sp, n)
	var addrs map[string][]string
	if err == nil {
		progress("", "waiting for the solution to answer on port 8080")
		addrs, err = c.waitReady(ctx, sp, n)
	}
	if err == nil && !req.SkipChecks {
		progress("", "checking the packaging standard")
		var report []byte
		report, err = c.fastCheck(ctx, m, addrs)
		rec.Check = report
	}
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

	rec.State = string(Ready)
	if prev != nil {
		rec.CreatedAt = prev.CreatedAt
	}
	if err := c.store.Put(ctx, rec); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.rec, s.state, s.reason, s.replicas = rec, Ready, "", n
	s.mu.Unlock()
	c.publish(rec, Ready, "", addrs)
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
		return fmt.Errorf("solution %s: %w", name, ErrNotFound)
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
	c.cfg.Metrics.Forget(name)
	return nil
}

// ErrNotFound is returned for a solution aim doesn't have.
var ErrNotFound = errors.New("not found")

// ForbiddenError is an action that the platform under aim refused to aim
// itself: on Kubernetes, the API server denying the service account that
// aim's API runs as (its Role lacks a permission). It is the
// installation's to fix, not the caller's, whose token was accepted.
type ForbiddenError struct {
	// Action says what aim was doing, e.g. "waking solution x".
	Action string
	Err    error
}

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("%s: the cluster refused aim's own service account, so this aim installation lacks a permission (the Helm chart's Role for the API grants it; upgrade the release or add the rule): %v", e.Action, e.Err)
}

func (e *ForbiddenError) Unwrap() error { return e.Err }

// InputError is a deploy that failed because of what was sent: a build
// that fails, an image that doesn't exist. The API answers it with 400/422.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// fastCheck runs the checks of the packaging standard that need only HTTP
// against the new generation, which answers by now: the root page, the
// private components' answers, and the recommendations. A failing rule
// refuses the deploy with the same report `aim check` prints.
func (c *Controller) fastCheck(ctx context.Context, m *spec.Manifest, addrs map[string][]string) ([]byte, error) {
	var targets []check.Target
	for _, comp := range m.Components {
		if a := addrs[comp.Name]; len(a) > 0 {
			targets = append(targets, check.Target{Component: comp, Addr: a[0]})
		}
	}
	rep := check.Fast(ctx, m, targets)
	var js bytes.Buffer
	if err := check.WriteJSON(&js, rep); err != nil {
		return nil, err
	}
	if rep.Failed() {
		var txt bytes.Buffer
		_ = check.WriteText(&txt, rep)
		return js.Bytes(), &CheckError{Report: txt.String()}
	}
	return js.Bytes(), nil
}

// CheckError is a deploy refused by the packaging standard's checks.
type CheckError struct{ Report string }

func (e *CheckError) Error() string {
	return "the solution does not follow the packaging standard (deploy with --skip-checks to override):\n" + e.Report
}
