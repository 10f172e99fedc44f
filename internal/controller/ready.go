package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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

func (c *Controller) crashError(ctx context.Context, sol, comp string, r runtime.Replica) error {
	var b strings.Builder
	fmt.Fprintf(&b, "component %s exited while starting", comp)
	switch {
	case r.OOMKilled:
		b.WriteString(": killed for using more than its memory limit")
	case r.ExitCode != 0:
		fmt.Fprintf(&b, " with code %d", r.ExitCode)
	case r.Restarts > 0:
		// The engine restarted it before we looked, and a running
		// container no longer shows the code it exited with.
		fmt.Fprintf(&b, " (the engine has restarted it %d times)", r.Restarts)
	}
	if lines := c.lastLogLines(ctx, sol, comp, 10); lines != "" {
		b.WriteString("; its last output:\n" + lines)
	}
	return &solution.StartError{Msg: b.String()}
}

func (c *Controller) timeoutError(sp runtime.Spec, n int, status *runtime.Status, ready map[string]bool) error {
	var probs []string
	for _, comp := range sp.Manifest.Components {
		var reps []runtime.Replica
		if status != nil {
			cs, _ := status.Component(comp.Name)
			reps = cs.Serving(sp.Generation, n)
		}
		if len(reps) == 0 {
			probs = append(probs, fmt.Sprintf("component %s has no running container", comp.Name))
			continue
		}
		for _, r := range reps {
			if ready[r.ID] {
				continue
			}
			msg := fmt.Sprintf("component %s: nothing answers on port %d after %s", comp.Name, spec.Port, c.cfg.StartTimeout)
			if ports, err := procnet.Listening(r.Pid); err == nil {
				listensOn8080 := false
				for _, p := range ports {
					listensOn8080 = listensOn8080 || p == spec.Port
				}
				if listensOn8080 && comp.Ready.Path != "" {
					msg = fmt.Sprintf("component %s: listens on %d but GET %s (its ready.path) does not answer 2xx after %s", comp.Name, spec.Port, comp.Ready.Path, c.cfg.StartTimeout)
				} else if listensOn8080 && comp.IsPublic() {
					msg = fmt.Sprintf("component %s: listens on %d but GET / answers 5xx or hangs after %s", comp.Name, spec.Port, c.cfg.StartTimeout)
				} else if !listensOn8080 {
					msg = fmt.Sprintf("component %s: nothing listens on port %d after %s; %s", comp.Name, spec.Port, c.cfg.StartTimeout, procnet.Describe(ports, spec.Port))
				}
			}
			probs = append(probs, msg)
			break
		}
	}
	return &solution.StartError{Msg: strings.Join(probs, "; ")}
}

func (c *Controller) lastLogLines(ctx context.Context, sol, comp string, n int) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	rc, err := c.rt.Logs(ctx, sol, comp, runtime.LogOptions{Tail: n})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(rc, 64<<10))
	for sc.Scan() {
		lines = append(lines, "  "+sc.Text())
	}
	return strings.Join(lines, "\n")
}
