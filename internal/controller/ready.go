package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/procnet"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// probeEvery is the pause between readiness probes. Short, because it
// adds directly to every wake.
const probeEvery = 25 * time.Millisecond

// waitReady waits until replicas 0..n-1 of every component of sp answer,
// and returns their addresses by component. It fails
// fast when a container exits, and after StartTimeout with what it can
// tell about a component that never listened on 8080.
func (c *Controller) waitReady(ctx context.Context, sp runtime.Spec, n int) (map[string][]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.StartTimeout)
	defer cancel()
	ready := map[string]bool{} // replica IDs that answered
	var last *runtime.Status
	for {
		status, err := c.rt.Inspect(ctx, sp.Manifest.Name)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return nil, fmt.Errorf("inspecting: %w", err)
		}
		last = status
		addrs := map[string][]string{}
		all := true
		for _, comp := range sp.Manifest.Components {
			cs, _ := status.Component(comp.Name)
			reps := cs.Serving(sp.Generation, n)
			if len(reps) < n {
				all = false
			}
			for _, r := range reps {
				if crashed(r) {
					return nil, c.crashError(ctx, sp.Manifest.Name, comp.Name, r)
				}
				if !ready[r.ID] {
					if !r.Running || r.Addr == "" || !c.answers(ctx, r.Addr, comp) {
						all = false
						continue
					}
					ready[r.ID] = true
				}
				addrs[comp.Name] = append(addrs[comp.Name], r.Addr)
			}
		}
		if all {
			return addrs, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(probeEvery):
			continue
		}
		break
	}
	if err := context.Cause(ctx); err != nil && ctx.Err() != context.DeadlineExceeded {
		return nil, err
	}
	return nil, c.timeoutError(sp, n, last, ready)
}

// crashed is true when a replica has exited since it was started; the
// engine may already be restarting it, which changes nothing: a component
// that crashes while starting is not going to answer.
func crashed(r runtime.Replica) bool {
	return r.Restarts > 0 || (!r.Running && !r.FinishedAt.IsZero() && r.FinishedAt.After(r.StartedAt))
}

// answers judges readiness by the component's rule (spec.Component's
// ReadyAnswer): its ready.path must answer 2xx; without one, a public
// component must answer GET / below 500 and a private one HTTP at all.
func (c *Controller) answers(ctx context.Context, addr string, comp spec.Component) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+comp.ReadyPath(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "aim-readiness")
	resp, err := c.probe.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return comp.ReadyAnswer(resp.StatusCode)
}

// crashError reports a component that exited while starting by the
// starts rule: the lines of its output that say why (check.ErrorLines,
// not merely the last ones) and a fix that fits them.
func (c *Controller) crashError(ctx context.Context, sol, comp string, r runtime.Replica) error {
	how := ""
	switch {
	case r.OOMKilled:
		how = ": killed for using more than its memory limit"
	case r.ExitCode != 0:
		how = fmt.Sprintf(" with code %d", r.ExitCode)
	case r.Restarts > 0:
		// The engine restarted it before we looked, and a running
		// container no longer shows the code it exited with.
		how = fmt.Sprintf(" (the engine has restarted it %d times)", r.Restarts)
	}
	ev := "exited while starting" + how
	lines := check.ErrorLines(c.logTail(ctx, sol, comp), 6)
	if len(lines) > 0 {
		ev += "; its output says: " + strings.Join(lines, " | ")
	}
	res := check.NewResult("starts", comp, check.Fail, ev)
	res.Fix = check.StartsFix(strings.Join(lines, "\n"), r.OOMKilled)
	return startError(fmt.Sprintf("component %s exited while starting%s", comp, how), res)
}

// startError is a StartError with the report of results.
func startError(msg string, results ...check.Result) *solution.StartError {
	var b strings.Builder
	_ = check.WriteResults(&b, "", results, false)
	return &solution.StartError{Msg: msg, Report: strings.TrimRight(b.String(), "\n")}
}

// commandError turns a runtime's CommandError into the report of the
// starts rule; other errors are returned as they are.
func commandError(err error) error {
	var ce *runtime.CommandError
	if !errors.As(err, &ce) {
		return err
	}
	return startError(fmt.Sprintf("component %s did not start", ce.Component), check.CommandFailure(ce.Component, ce.Cause, ce.Command, ce.Path))
}

// timeoutError reports the components that did not answer within the
// start-up limit by the port-8080 rule, from what can be told about
// where their processes listen.
func (c *Controller) timeoutError(sp runtime.Spec, n int, status *runtime.Status, ready map[string]bool) error {
	var results []check.Result
	var comps []string
	for _, comp := range sp.Manifest.Components {
		var reps []runtime.Replica
		if status != nil {
			cs, _ := status.Component(comp.Name)
			reps = cs.Serving(sp.Generation, n)
		}
		if len(reps) == 0 {
			comps = append(comps, comp.Name)
			results = append(results, check.NewResult("starts", comp.Name, check.Fail, "it has no running container"))
			continue
		}
		for _, r := range reps {
			if ready[r.ID] {
				continue
			}
			comps = append(comps, comp.Name)
			results = append(results, check.NewResult("port-8080", comp.Name, check.Fail, c.silence(comp, r)))
			break
		}
	}
	if len(comps) == 0 {
		return &solution.StartError{Msg: fmt.Sprintf("the solution's replicas did not all run within %s", c.cfg.StartTimeout)}
	}
	verb := "component " + comps[0] + " did not"
	if len(comps) > 1 {
		verb = "components " + strings.Join(comps, ", ") + " did not"
	}
	return startError(fmt.Sprintf("%s answer on port %d within %s", verb, spec.Port, c.cfg.StartTimeout), results...)
}

// silence says what a replica that never answered does instead.
func (c *Controller) silence(comp spec.Component, r runtime.Replica) string {
	msg := fmt.Sprintf("nothing answers on port %d after %s", spec.Port, c.cfg.StartTimeout)
	if ports, err := procnet.Listening(r.Pid); err == nil {
		listensOn8080 := false
		for _, p := range ports {
			listensOn8080 = listensOn8080 || p == spec.Port
		}
		if listensOn8080 && comp.Ready.Path != "" {
			msg = fmt.Sprintf("listens on %d but GET %s (its ready.path) does not answer 2xx after %s", spec.Port, comp.Ready.Path, c.cfg.StartTimeout)
		} else if listensOn8080 && comp.IsPublic() {
			msg = fmt.Sprintf("listens on %d but GET / answers 5xx or hangs after %s", spec.Port, c.cfg.StartTimeout)
		} else if !listensOn8080 {
			msg = fmt.Sprintf("nothing listens on port %d after %s; %s", spec.Port, c.cfg.StartTimeout, procnet.Describe(ports, spec.Port))
		}
	}
	return msg
}

// logTail is a component's last output: enough lines to hold a crash
// report (a Go panic's stacks run long), which check.ErrorLines reads.
func (c *Controller) logTail(ctx context.Context, sol, comp string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	rc, err := c.rt.Logs(ctx, sol, comp, runtime.LogOptions{Tail: 200})
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, 256<<10))
	return string(b)
}
