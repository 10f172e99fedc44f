package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// Get returns one solution with its runtime status.
func (c *Controller) Get(ctx context.Context, name string) (*solution.Info, error) {
	s := c.get(name)
	if s == nil {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	rec, st, reason := s.snapshot()
	if rec == nil {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	status, err := c.rt.Inspect(ctx, name)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err
	}
	return c.info(rec, st, reason, status), nil
}

// List returns every solution, by name, without runtime details.
func (c *Controller) List(ctx context.Context) []*solution.Info {
	c.mu.Lock()
	names := make([]string, 0, len(c.sols))
	for n := range c.sols {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := make([]*solution.Info, 0, len(names))
	for _, n := range names {
		s := c.get(n)
		if s == nil {
			continue
		}
		rec, st, reason := s.snapshot()
		if rec == nil {
			continue
		}
		out = append(out, c.info(rec, st, reason, nil))
	}
	return out
}

func (c *Controller) info(rec *store.Solution, st solution.State, reason string, status *runtime.Status) *solution.Info {
	name, m := rec.Name, rec.Manifest
	in := &solution.Info{
		Name: name, Title: m.DisplayTitle(), Description: m.Description, Provider: m.Provider, Tags: m.Tags,
		URL: c.cfg.URL(name), State: st, Reason: reason, Generation: rec.Generation, SkipChecks: rec.SkipChecks,
		Manifest: m, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt, Owner: rec.Owner, Visibility: solution.VisibilityOf(m),
	}
	if len(rec.Check) > 0 {
		var rep struct {
			OpenAPI string             `json:"openapi"`
			Results []solution.Finding `json:"results"`
		}
		if json.Unmarshal(rec.Check, &rep) == nil {
			if rep.OpenAPI != "" {
				in.OpenAPI = strings.TrimSuffix(in.URL, "/") + rep.OpenAPI
			}
			for _, f := range rep.Results {
				if f.Status == "warn" || f.Status == "fail" {
					in.Findings = append(in.Findings, f)
				}
			}
		}
	}
	for _, comp := range m.Components {
		ci := solution.ComponentInfo{Name: comp.Name, Public: comp.IsPublic(), Paths: comp.Paths, Image: rec.Images[comp.Name]}
		if status != nil {
			cs, _ := status.Component(comp.Name)
			for _, r := range cs.Of(rec.Generation) {
				ci.Replicas++
				ci.Restarts += r.Restarts
				if r.Running {
					ci.Running++
				} else if !r.FinishedAt.IsZero() {
					ci.LastExit = r.ExitCode
				}
			}
		}
		in.Components = append(in.Components, ci)
	}
	return in
}

// Logs streams a solution's logs.
func (c *Controller) Logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	s := c.get(name)
	if s == nil {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if component != "" {
		if rec, _, _ := s.snapshot(); rec != nil {
			if _, ok := rec.Manifest.Component(component); !ok {
				return nil, fmt.Errorf("solution %s has no component %q: %w", name, component, solution.ErrNotFound)
			}
		}
	}
	rc, err := c.rt.Logs(ctx, name, component, opts)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, fmt.Errorf("solution %s has no containers (yet): %w", name, solution.ErrNotFound)
	}
	return rc, err
}
