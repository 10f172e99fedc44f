package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// Each deploy is a generation, recorded with what it ran and what became
// of it. The images of the last KeepGenerations that served are kept, so
// that a rollback serves one of them again without a build.

// recordGeneration records a deploy's generation as it starts. The
// record is history, not state: a failure to write it is logged, never
// a reason to refuse the deploy.
func (c *Controller) recordGeneration(ctx context.Context, g *store.Generation) {
	if err := c.store.PutGeneration(context.WithoutCancel(ctx), g); err != nil {
		c.log.Warn("recording a generation", "solution", g.Solution, "generation", g.Generation, "err", err)
	}
}

func (c *Controller) setOutcome(ctx context.Context, name string, gen int64, o store.Outcome, reason string) {
	if err := c.store.SetOutcome(context.WithoutCancel(ctx), name, gen, o, reason); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("recording a generation's outcome", "solution", name, "generation", gen, "err", err)
	}
}

// retire removes the images aim built for generations past the newest
// KeepGenerations that served (and for those that never served), unless a
// kept generation, or current, runs them.
func (c *Controller) retire(ctx context.Context, name string, current map[string]string) {
	gens, err := c.store.ListGenerations(ctx, name, 0)
	if err != nil {
		c.log.Warn("listing generations to retire", "solution", name, "err", err)
		return
	}
	keep := map[string]bool{}
	for _, ref := range current {
		keep[ref] = true
	}
	kept := 0
	var drop []string
	for _, g := range gens { // newest first
		served := g.Outcome == store.OutcomeServing || g.Outcome == store.OutcomeReplaced
		if served && kept < c.cfg.KeepGenerations {
			kept++
			for _, ref := range g.Images {
				keep[ref] = true
			}
			continue
		}
		for _, ref := range g.Images {
			drop = append(drop, ref)
		}
	}
	for _, ref := range drop {
		if !keep[ref] && strings.HasPrefix(ref, c.cfg.ImagePrefix+"/") {
			keep[ref] = true // once
			if err := c.builder.RemoveImage(context.WithoutCancel(ctx), ref); err != nil {
				c.log.Debug("removing a retired image", "image", ref, "err", err)
			}
		}
	}
}

// History lists a solution's generations, newest first.
func (c *Controller) History(ctx context.Context, name string, limit int) ([]store.Generation, error) {
	if _, err := c.store.Get(ctx, name); err != nil {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	return c.store.ListGenerations(ctx, name, limit)
}

// Rollback serves generation to of a solution again (0: the one that
// served before the current one), as a new generation running that one's
// images and manifest, without a build. It fails, leaving the current
// generation serving, when that generation never served or its images
// are gone.
func (c *Controller) Rollback(ctx context.Context, name string, to int64, by string, progress solution.Progress) (*solution.Info, error) {
	cur, err := c.store.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	target, err := c.rollbackTarget(ctx, cur, to)
	if err != nil {
		return nil, err
	}
	// It passed its checks when it served; the image is the same.
	return c.again(ctx, target, cur.SkipChecks, by, target.Generation, progress)
}

// again serves target's manifest and images as a new generation, without
// a build: a rollback (rollbackOf is target's generation), or the serving
// generation created anew to take changed secrets (rollbackOf 0).
func (c *Controller) again(ctx context.Context, target *store.Generation, skipChecks bool, by string, rollbackOf int64, progress solution.Progress) (*solution.Info, error) {
	m := *target.Manifest
	m.Components = append([]spec.Component(nil), target.Manifest.Components...)
	for i, comp := range m.Components {
		ref := target.Images[comp.Name]
		id, err := c.builder.ImageID(ctx, ref)
		if err != nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf(
				"generation %d cannot be served again: the image %s of component %s is gone (aim keeps the images of the last %d generations that served); deploy that version again instead",
				target.Generation, ref, comp.Name, c.cfg.KeepGenerations)}
		}
		if want := target.Digests[comp.Name]; want != "" && id != want {
			return nil, &solution.InputError{Msg: fmt.Sprintf(
				"generation %d cannot be served again: the image %s of component %s is no longer the one it ran (%s, now %s)", target.Generation, ref, comp.Name, want, id)}
		}
		m.Components[i].Image, m.Components[i].Build, m.Components[i].Dockerfile = ref, "", ""
	}
	return c.Deploy(ctx, solution.DeployRequest{Manifest: &m, SkipChecks: skipChecks, By: by, RollbackOf: rollbackOf}, progress)
}

func (c *Controller) rollbackTarget(ctx context.Context, cur *store.Solution, to int64) (*store.Generation, error) {
	if to == cur.Generation && to != 0 {
		return nil, &solution.InputError{Msg: fmt.Sprintf("generation %d is the one serving %s", to, cur.Name)}
	}
	if to != 0 {
		g, err := c.store.GetGeneration(ctx, cur.Name, to)
		if err != nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf("%s has no generation %d (aim history %s lists them)", cur.Name, to, cur.Name)}
		}
		if g.Outcome != store.OutcomeServing && g.Outcome != store.OutcomeReplaced {
			return nil, &solution.InputError{Msg: fmt.Sprintf("generation %d of %s never served (%s: %s); roll back to one that did", to, cur.Name, g.Outcome, g.Reason)}
		}
		return g, nil
	}
	gens, err := c.store.ListGenerations(ctx, cur.Name, 0)
	if err != nil {
		return nil, err
	}
	for i := range gens {
		if gens[i].Generation < cur.Generation && gens[i].Outcome == store.OutcomeReplaced {
			return &gens[i], nil
		}
	}
	return nil, &solution.InputError{Msg: fmt.Sprintf("%s has no earlier generation that served", cur.Name)}
}

// keepDefault is how many served generations' images stay for rollback.
const keepDefault = 3
