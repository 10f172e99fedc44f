package controller

import (
	"context"
	"fmt"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// What an aim that was killed leaves, and how a start puts it right
// (docs/security.md, suite case 6). The engine goes on while aim is
// down: it keeps the containers of a deploy, a wake or a trial running,
// and finishes a create that was on its way when aim died.

// interruptedFirst is a first deploy's reason, when aim stopped during
// it: nothing ever served.
const interruptedFirst = "the deploy was interrupted when aim stopped; deploy again"

// leftovers says whether a solution has containers that only a deploy in
// progress may have: of another generation than gen, or trials. Outside
// a deploy they are what one an aim stopped in the middle of left.
func leftovers(st runtime.Status, gen int64) bool {
	if st.Trials > 0 {
		return true
	}
	for _, cs := range st.Components {
		for _, r := range cs.Replicas {
			if r.Generation != gen {
				return true
			}
		}
	}
	return false
}

// runs says whether a replica of generation gen runs.
func runs(st runtime.Status, gen int64) bool {
	for _, cs := range st.Components {
		for _, r := range cs.Of(gen) {
			if r.Running {
				return true
			}
		}
	}
	return false
}

// settle records what became of the deploys an aim stopped in the middle
// of, which the history still calls deploying. The one a solution's
// record names finished: a deploy saves the record once the new
// generation answers, before it removes the previous one and records
// outcomes. Any other never served: its containers are among the
// leftovers Adopt removes, and its images go as a failed deploy's do.
func (c *Controller) settle(ctx context.Context, recs []*store.Solution) {
	gens, err := c.store.Unfinished(ctx)
	if err != nil {
		c.log.Error("listing interrupted deploys", "err", err)
		return
	}
	byName := map[string]*store.Solution{}
	for _, rec := range recs {
		byName[rec.Name] = rec
	}
	for _, g := range gens {
		rec := byName[g.Solution]
		what := "deploy"
		if g.RollbackOf != 0 {
			what = fmt.Sprintf("rollback to generation %d", g.RollbackOf)
		}
		if rec != nil && rec.Generation == g.Generation && rec.State != string(solution.Deploying) {
			c.log.Warn("a "+what+" interrupted when aim stopped had finished: its generation serves",
				"solution", g.Solution, "generation", g.Generation)
			c.setOutcome(ctx, g.Solution, g.Generation, store.OutcomeServing, "")
			c.replaceOthers(ctx, g.Solution, g.Generation)
			c.retire(ctx, g.Solution, rec.Images)
			continue
		}
		var reason string
		switch {
		case rec == nil:
			reason = fmt.Sprintf("the %s was interrupted when aim stopped, before the solution was saved", what)
		case rec.Generation == g.Generation:
			reason = interruptedFirst
		default:
			reason = fmt.Sprintf("interrupted when aim stopped, before it answered; generation %d stays the current one", rec.Generation)
		}
		c.log.Warn("a "+what+" was interrupted when aim stopped; its generation never served",
			"solution", g.Solution, "generation", g.Generation, "reason", reason)
		c.setOutcome(ctx, g.Solution, g.Generation, store.OutcomeFailed, reason)
		if rec == nil {
			c.removeImages(ctx, g.Images, nil)
		} else {
			c.retire(ctx, g.Solution, rec.Images)
		}
	}
}

// replaceOthers records every generation of name that the history says
// serves, but gen, as replaced.
func (c *Controller) replaceOthers(ctx context.Context, name string, gen int64) {
	gens, err := c.store.ListGenerations(ctx, name, 0)
	if err != nil {
		c.log.Warn("listing generations", "solution", name, "err", err)
		return
	}
	for _, g := range gens {
		if g.Generation != gen && g.Outcome == store.OutcomeServing {
			c.setOutcome(ctx, name, g.Generation, store.OutcomeReplaced, "")
		}
	}
}

// stopLeftovers stops the replicas that an interrupted wake or first
// deploy started and the engine kept running: a sleeping or failed
// solution runs nothing. It waits for any wake or deploy that came first,
// and then leaves what they made alone.
func (c *Controller) stopLeftovers(ctx context.Context, s *tracked, rec *store.Solution, why string) {
	s.op.Lock()
	defer s.op.Unlock()
	cur, st, _ := s.snapshot()
	if cur == nil || cur.Generation != rec.Generation || (st != solution.Sleeping && st != solution.Failed) {
		return
	}
	c.log.Info("stopping the containers of "+why, "solution", rec.Name, "generation", rec.Generation)
	if err := c.rt.Scale(ctx, c.runtimeSpec(rec), 0); err != nil {
		c.log.Warn("stopping the containers of "+why, "solution", rec.Name, "err", err)
	}
}

// pruneLeftovers removes what a deploy left that the engine finished
// after aim stopped (a container it was creating), once the solution
// serves and no deploy runs: the caller holds the solution's op lock.
func (c *Controller) pruneLeftovers(ctx context.Context, rec *store.Solution, st *runtime.Status) {
	if !leftovers(*st, rec.Generation) {
		return
	}
	c.log.Info("removing containers of another generation, left by a deploy aim stopped in", "solution", rec.Name, "generation", rec.Generation)
	if err := c.rt.Prune(ctx, rec.Name, rec.Generation); err != nil {
		c.log.Warn("removing leftovers", "solution", rec.Name, "err", err)
	}
}
