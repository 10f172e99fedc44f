package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// Info is a solution as the API shows it.
type Info struct {
	Name        string        `json:"name"`
	Title       string        `json:"title"`
	Description string        `json:"description,omitempty"`
	Provider    spec.Provider `json:"provider"`
	Tags        []string      `json:"tags,omitempty"`
	URL         string        `json:"url"`
	State       State         `json:"state"`
	Reason      string        `json:"reason,omitempty"`
	Generation  int64         `json:"generation"`
	SkipChecks  bool          `json:"skipChecks,omitempty"`
	// OpenAPI is the URL of the solution's OpenAPI document, when the
	// deploy's checks found one.
	OpenAPI    string          `json:"openapi,omitempty"`
	Components []ComponentInfo `json:"components"`
	Manifest   *spec.Manifest  `json:"manifest"`
	CreatedAt  time.Time       `json:"createdAt"`
	UpdatedAt  time.Time       `json:"updatedAt"`
}

// ComponentInfo is one component's part of Info.
type ComponentInfo struct {
	Name     string   `json:"name"`
	Public   bool     `json:"public"`
	Paths    []string `json:"paths,omitempty"`
	Image    string   `json:"image"`
	Replicas int      `json:"replicas"`
	Running  int      `json:"running"`
	Restarts int      `json:"restarts"`
	// LastExit is the exit code of the last replica that stopped.
	LastExit int `json:"lastExit,omitempty"`
}

// Get returns one solution with its runtime status.
func (c *Controller) Get(ctx context.Context, name string) (*Info, error) {
	s := c.get(name)
	if s == nil {
		return nil, fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	rec, st, reason := s.snapshot()
	if rec == nil {
		return nil, fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	status, err := c.rt.Inspect(ctx, name)
	if err != nil && !errors.Is(err, runtime.ErrNotFound) {
		return nil, err
	}
	return c.info(rec, st, reason, status), nil
}

// List returns every solution, by name, without runtime details.
func (c *Controller) List(ctx context.Context) []*Info {
	c.mu.Lock()
	names := make([]string, 0, len(c.sols))
	for n := range c.sols {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	out := make([]*Info, 0, len(names))
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

func (c *Controller) info(rec *store.Solution, st State, reason string, status *runtime.Status) *Info {
	name, m := rec.Name, rec.Manifest
	in := &Info{
		Name: name, Title: m.DisplayTitle(), Description: m.Description, Provider: m.Provider, Tags: m.Tags,
		URL: c.cfg.URL(name), State: st, Reason: reason, Generation: rec.Generation, SkipChecks: rec.SkipChecks,
		Manifest: m, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
	}
	if len(rec.Check) > 0 {
		var rep struct {
			OpenAPI string `json:"openapi"`
		}
		if json.Unmarshal(rec.Check, &rep) == nil && rep.OpenAPI != "" {
			in.OpenAPI = strings.TrimSuffix(in.URL, "/") + rep.OpenAPI
		}
	}
	for _, comp := range m.Components {
		ci := ComponentInfo{Name: comp.Name, Public: comp.IsPublic(), Paths: comp.Paths, Image: rec.Images[comp.Name]}
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
		return nil, fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	if component != "" {
		if rec, _, _ := s.snapshot(); rec != nil {
			if _, ok := rec.Manifest.Component(component); !ok {
				return nil, fmt.Errorf("solution %s has no component %q: %w", name, component, ErrNotFound)
			}
		}
	}
	rc, err := c.rt.Logs(ctx, name, component, opts)
	if errors.Is(err, runtime.ErrNotFound) {
		return nil, fmt.Errorf("solution %s has no containers (yet): %w", name, ErrNotFound)
	}
	return rc, err
}
