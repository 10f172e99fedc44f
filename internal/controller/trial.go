package controller

import (
	"context"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime"
)

// trialRunner is a runtime that can run a throwaway replica of a
// component and stop it as a sleep does (the Docker runtime can; see
// runtime.Trial). It is how a deploy learns, before the first visitor,
// what only a run shows: that a component ignores SIGTERM (every sleep
// then waits out the grace and ends in SIGKILL), that the image hides
// files under /tmp, that it writes what a sleep loses.
type trialRunner interface {
	Trial(ctx context.Context, s runtime.Spec, component string, answers func(ctx context.Context, addr string) bool, within time.Duration) (*runtime.Trial, error)
}

// trials is one deploy's trials, running beside its replicas.
type trials struct {
	cancel  context.CancelFunc
	done    chan struct{}  // closed when every trial has ended
	results []check.Result // by component, in manifest order; set before done
}

// startTrials starts a trial of every component of sp, when the runtime
// runs trials; nil otherwise. They run while the replicas start, so that
// a component that stops on SIGTERM adds next to nothing to the deploy.
func (c *Controller) startTrials(ctx context.Context, sp runtime.Spec) *trials {
	tr, ok := c.rt.(trialRunner)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := &trials{cancel: cancel, done: make(chan struct{})}
	comps := sp.Manifest.Components
	per := make([][]check.Result, len(comps))
	var wg sync.WaitGroup
	wg.Add(len(comps))
	for i, comp := range comps {
		go func() {
			defer wg.Done()
			answers := func(ctx context.Context, addr string) bool { return c.answers(ctx, addr, comp) }
			got, err := tr.Trial(ctx, sp, comp.Name, answers, c.cfg.StartTimeout)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Warn("trial replica", "solution", sp.Manifest.Name, "component", comp.Name, "err", err)
				}
				return
			}
			per[i] = trialResults(got)
		}()
	}
	go func() {
		wg.Wait()
		for _, rs := range per {
			t.results = append(t.results, rs...)
		}
		close(t.done)
	}()
	return t
}

// wait returns the trials' results once they have all ended.
func (t *trials) wait() []check.Result {
	if t == nil {
		return nil
	}
	<-t.done
	t.cancel()
	return t.results
}

// stop ends the trials (a deploy that failed does not need them) and
// waits until their containers are gone.
func (t *trials) stop() {
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
}

// trialResults judges sigterm, image-tmp and writes-lost from a trial. A
// sigterm failure only warns at deploy: the solution serves, but the
// status says that each of its sleeps ends in SIGKILL.
func trialResults(tr *runtime.Trial) []check.Result {
	comp := tr.Component
	out := []check.Result{check.ImageTmp(comp, tr.WorkingDir, tr.ImageTmp, tr.ImageTmpMore)}
	if !tr.Answered {
		why := "the trial replica did not answer"
		return append(out, check.NewResult("sigterm", comp, check.Skip, why), check.NewResult("writes-lost", comp, check.Skip, why))
	}
	return append(out,
		check.Sigterm(comp, tr.Stopped, tr.Grace, tr.Killed, tr.ExitCode, tr.Command, true),
		check.WritesLost(comp, nil, tr.TmpWrites, tr.TmpSeen))
}
