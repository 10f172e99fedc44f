package dockercheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/spec"
)

// pollEvery is the pause between readiness probes and socket samples.
const pollEvery = 50 * time.Millisecond

// probe waits for the component to answer on 8080, watching its sockets
// for attempts to reach the internet meanwhile, then judges the rules
// that need it running: starts, port-8080, root-html, health,
// memory-idle, startup-time, image-size and no-internet.
func (r *compRun) probe(ctx context.Context) error {
	name := r.comp.Name
	if r.imageSize > r.o.MaxImageSize {
		r.set(check.NewResult("image-size", name, check.Warn, fmt.Sprintf("%s is %s, above %s", r.image, check.FormatBytes(r.imageSize), check.FormatBytes(r.o.MaxImageSize))))
	} else {
		r.set(check.NewResult("image-size", name, check.Pass, fmt.Sprintf("%s is %s", r.image, check.FormatBytes(r.imageSize))))
	}
	if r.startFailed != nil {
		r.neverStarted()
		return nil
	}
	ins, err := r.s.cli.ContainerInspect(ctx, r.id)
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", name, err)
	}
	if ins.State != nil {
		r.pid = ins.State.Pid
	}
	if ep := ins.NetworkSettings.Networks[r.s.net]; ep != nil {
		r.ip = ep.IPAddress
	}
	stopWatch := r.watchSockets(ctx)
	exited, err := r.waitReady(ctx)
	if err != nil {
		stopWatch()
		return err
	}
	if r.ready {
		// First, so that the probes below see the component once it can
		// serve, as a visitor would.
		r.set(check.ProbeReadiness(ctx, r.hc, check.ReadinessTarget{
			Comp: r.comp, Addr: r.addr(), Started: r.started, Ready: r.readyAt, Deadline: r.started.Add(r.o.StartTimeout), Progress: r.o.Progress,
		}))
		if slices.Contains(r.comp.Paths, "/") && r.comp.IsPublic() {
			var res check.Result
			res, r.root = check.ProbeRoot(ctx, r.hc, r.addr(), name)
			r.set(res)
		}
		if r.comp.IsPublic() {
			r.set(check.ProbeHealth(ctx, r.hc, check.APITarget{Comp: r.comp, Addr: r.addr(), Paths: r.comp.Paths}))
		}
		r.set(r.memory(ctx))
		if files, err := docker.Writes(r.pid, docker.WritableDirs(r.comp), 6); err == nil {
			r.tmpWrites, r.tmpSeen = files, true
		}
		st := check.Pass
		if r.readyAfter > r.o.SlowStart {
			st = check.Warn
		}
		r.set(check.NewResult("startup-time", name, st, fmt.Sprintf("answered on 8080 %s after start", check.FormatDuration(r.readyAfter))))
		// A process that dies after its first answer did not start.
		ins, err := r.s.cli.ContainerInspect(ctx, r.id)
		if err != nil {
			stopWatch()
			return fmt.Errorf("inspecting %s: %w", name, err)
		}
		if !ins.State.Running {
			exited = true
			r.set(r.exited(ctx, ins.State, "after answering"))
		}
	} else {
		for _, id := range []string{"root-html", "health", "readiness", "memory-idle", "startup-time"} {
			if id == "root-html" && !(r.comp.IsPublic() && slices.Contains(r.comp.Paths, "/")) {
				continue
			}
			if id == "health" && !r.comp.IsPublic() {
				continue
			}
			r.set(check.NewResult(id, name, check.Skip, r.notReady()))
		}
	}
	if !exited {
		r.set(check.NewResult("starts", name, check.Pass, "running"))
	}
	stopWatch()
	r.set(r.internet(ctx))
	return nil
}

// waitReady polls until the component answers HTTP on 8080 (and its
// ready.path, when it names one, with 2xx: aim's runtimes would not route
// to it before), exits, or the start-up limit passes; it sets the starts
// and port-8080 results. exited reports that the process ended.
func (r *compRun) waitReady(ctx context.Context) (exited bool, err error) {
	name := r.comp.Name
	deadline := r.started.Add(r.o.StartTimeout)
	var lastErr error
	var answered time.Duration // when GET / first answered
	lastReady := ""            // what the ready.path last answered
	for {
		ins, err := r.s.cli.ContainerInspect(ctx, r.id)
		if err != nil {
			return false, fmt.Errorf("inspecting %s: %w", name, err)
		}
		if !ins.State.Running {
			r.set(r.exited(ctx, ins.State, ""))
			r.set(check.NewResult("port-8080", name, check.Skip, "the process exited before it answered"))
			return true, nil
		}
		if r.ip != "" && answered == 0 {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			a, err := check.Get(pctx, r.hc, r.addr(), "", "/")
			cancel()
			if err == nil {
				answered = max(time.Since(r.started), 1)
				ev := fmt.Sprintf("GET / → %d after %s", a.StatusCode(), check.FormatDuration(answered))
				if r.comp.Ready.Path == "" {
					r.ready, r.readyAfter = true, answered
					if r.comp.ReadyAnswer(a.StatusCode()) {
						r.readyAt = r.started.Add(answered)
					}
					r.set(check.NewResult("port-8080", name, check.Pass, ev))
					return false, nil
				}
			}
			lastErr = err
		}
		if answered > 0 {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			code, ok, err := check.ProbeReady(pctx, r.hc, r.addr(), r.comp)
			cancel()
			if ok {
				r.ready, r.readyAfter = true, time.Since(r.started)
				r.readyAt = r.started.Add(r.readyAfter)
				r.set(check.NewResult("port-8080", name, check.Pass, fmt.Sprintf("GET %s (its ready.path) → %d after %s; GET / answered after %s",
					r.comp.Ready.Path, code, check.FormatDuration(r.readyAfter), check.FormatDuration(answered))))
				return false, nil
			}
			lastReady = fmt.Sprint(code)
			if err != nil {
				lastReady = check.ShortErr(err)
			}
		}
		if time.Now().After(deadline) {
			res := check.NewResult("port-8080", name, check.Fail, r.portEvidence(lastErr))
			if answered > 0 {
				res.Evidence = fmt.Sprintf("GET / answered after %s, but GET %s (its ready.path) → %s after %s", check.FormatDuration(answered), r.comp.Ready.Path, lastReady, check.FormatDuration(r.o.StartTimeout))
				res.Fix = "name a ready.path that answers 2xx once the component can serve, within the start-up limit, or remove ready to use the default rule (GET / below 500)"
			}
			r.set(res)
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// portEvidence says why nothing answered, from where the process listens.
func (r *compRun) portEvidence(lastErr error) string {
	after := check.FormatDuration(r.o.StartTimeout)
	ss, err := sockets(r.pid)
	if err != nil {
		return fmt.Sprintf("nothing answers on 8080 after %s (where the process listens is unknown: %v)", after, err)
	}
	ls := listeners(ss)
	var on8080 []string
	loopbackOnly := true
	for _, l := range ls {
		if l.Port() == spec.Port {
			on8080 = append(on8080, l.String())
			loopbackOnly = loopbackOnly && l.Addr().IsLoopback()
		}
	}
	switch {
	case len(on8080) == 0:
		return fmt.Sprintf("nothing on 8080 after %s; %s", after, describeListeners(ls))
	case loopbackOnly:
		return fmt.Sprintf("nothing answers on %s after %s; the process listens on %s only, which neither siblings nor the gateway reach", r.addr(), after, strings.Join(on8080, ", "))
	default:
		e := "no answer"
		if lastErr != nil {
			e = check.ShortErr(lastErr)
		}
		return fmt.Sprintf("the process listens on %s but gives no HTTP answer after %s: %s", strings.Join(on8080, ", "), after, e)
	}
}

// neverStarted sets the results of a component whose command the engine
// could not run: starts fails with the engine's cause and a fix for it;
// what needs the process running is skipped.
func (r *compRun) neverStarted() {
	name := r.comp.Name
	r.set(check.CommandFailure(name, r.startFailed.cause, r.img.Command(), r.img.Getenv("PATH")))
	r.set(check.NewResult("port-8080", name, check.Skip, "the process never started"))
	for _, id := range []string{"root-html", "health", "memory-idle", "startup-time", "no-internet"} {
		if id == "root-html" && !(r.comp.IsPublic() && slices.Contains(r.comp.Paths, "/")) {
			continue
		}
		if id == "health" && !r.comp.IsPublic() {
			continue
		}
		r.set(check.NewResult(id, name, check.Skip, "the process never started"))
	}
}

// exited judges starts for a process that ended: the evidence is how,
// with the lines of its output that say why, and the fix fits them.
func (r *compRun) exited(ctx context.Context, st *container.State, when string) check.Result {
	out := r.logs(ctx, r.id)
	res := check.NewResult("starts", r.comp.Name, check.Fail, r.exitEvidence(st, when, out))
	r.exitCause = check.StartsCauseOf(strings.Join(check.ErrorLines(out, 4), "\n"), st.OOMKilled)
	res.Fix = r.exitCause.Fix()
	return res
}

// exitEvidence describes how a container ended, with the lines of its
// output that say why (check.ErrorLines).
func (r *compRun) exitEvidence(st *container.State, when, out string) string {
	var b strings.Builder
	b.WriteString("exited")
	if st.OOMKilled {
		b.WriteString(", killed for using more than its memory limit,")
	} else {
		fmt.Fprintf(&b, " with code %d", st.ExitCode)
	}
	if when != "" {
		b.WriteString(" " + when)
	} else if fin, err := time.Parse(time.RFC3339Nano, st.FinishedAt); err == nil && fin.After(r.started) {
		fmt.Fprintf(&b, " %s after start", check.FormatDuration(fin.Sub(r.started)))
	}
	if lines := check.ErrorLines(out, 4); len(lines) > 0 {
		b.WriteString("; its output says: " + strings.Join(lines, " | "))
	}
	return b.String()
}

// watchSockets samples the process's sockets until the returned function
// is called, and records connection attempts that leave the network.
func (r *compRun) watchSockets(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]bool{}
		for {
			if ss, err := sockets(r.pid); err == nil {
				for _, a := range outgoing(ss, r.s.subnet) {
					if !seen[a.String()] {
						seen[a.String()] = true
						r.mu.Lock()
						r.attempts = append(r.attempts, a)
						r.mu.Unlock()
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pollEvery / 2):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// resolveFailures are what programs print when a name lookup fails, as the
// internal network makes every lookup of an internet name fail.
var resolveFailures = []string{"no such host", "Temporary failure in name resolution", "Name or service not known", "Could not resolve host", "getaddrinfo failed", "Failed to resolve", "NameResolutionError"}

// internet judges no-internet from the kernel's record of connection
// attempts, and from the output when a name lookup failed.
func (r *compRun) internet(ctx context.Context) check.Result {
	name := r.comp.Name
	r.mu.Lock()
	attempts := slices.Clone(r.attempts)
	r.mu.Unlock()
	var lookups []string
	for _, l := range strings.Split(r.logs(ctx, r.id), "\n") {
		for _, f := range resolveFailures {
			if strings.Contains(l, f) {
				lookups = append(lookups, strings.TrimSpace(l))
				break
			}
		}
	}
	var ev []string
	if len(attempts) > 0 {
		s := make([]string, len(attempts))
		for i, a := range attempts {
			s[i] = a.String()
		}
		sort.Strings(s)
		ev = append(ev, "tried to connect to "+strings.Join(s, ", ")+" at start")
	}
	if len(lookups) > 0 {
		ev = append(ev, "its output says: "+strings.Join(lastLines(strings.Join(lookups, "\n"), 2), " | "))
	}
	if len(ev) > 0 {
		return check.NewResult("no-internet", name, check.Warn, strings.Join(ev, "; "))
	}
	if ok, err := hasDefaultRoute(r.pid); err == nil && !ok {
		return check.NewResult("no-internet", name, check.Skip, "this engine gives internal networks no default route, so an attempt fails at once and leaves no trace; the output shows no failed lookup")
	}
	if r.pid <= 0 {
		return check.NewResult("no-internet", name, check.Skip, "the process's sockets could not be read")
	}
	if _, err := sockets(r.pid); err != nil && len(attempts) == 0 && r.ready {
		return check.NewResult("no-internet", name, check.Skip, fmt.Sprintf("the process's sockets could not be read (aim check must run on the engine's host): %v", err))
	}
	return check.NewResult("no-internet", name, check.Pass, "no connection attempt beyond its network at start")
}

// memory judges memory-idle from one sample of the engine's stats, taken
// once the component has answered.
func (r *compRun) memory(ctx context.Context) check.Result {
	name := r.comp.Name
	limit := int64(r.comp.Resources.Or(r.o.Defaults).Memory)
	resp, err := r.s.cli.ContainerStatsOneShot(ctx, r.id)
	if err != nil {
		return check.NewResult("memory-idle", name, check.Skip, fmt.Sprintf("no stats from the engine: %v", err))
	}
	defer resp.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return check.NewResult("memory-idle", name, check.Skip, fmt.Sprintf("reading the engine's stats: %v", err))
	}
	used := int64(st.MemoryStats.Usage)
	// As docker stats does: the page cache the kernel can drop is not use.
	if v, ok := st.MemoryStats.Stats["total_inactive_file"]; ok && int64(v) < used {
		used -= int64(v)
	} else if v, ok := st.MemoryStats.Stats["inactive_file"]; ok && int64(v) < used {
		used -= int64(v)
	}
	r.memUsage = used
	ev := fmt.Sprintf("%s of %s (%.0f%%)", check.FormatBytes(used), check.FormatBytes(limit), 100*float64(used)/float64(limit))
	if used >= limit*9/10 {
		return check.NewResult("memory-idle", name, check.Fail, ev+" when idle, too close to the limit")
	}
	return check.NewResult("memory-idle", name, check.Pass, ev)
}

// stop sends SIGTERM and judges sigterm by how long the process takes to
// exit.
func (r *compRun) stop(ctx context.Context) {
	name := r.comp.Name
	if r.startFailed != nil {
		r.set(check.NewResult("sigterm", name, check.Skip, "the process never started"))
		return
	}
	if !r.ready {
		r.set(check.NewResult("sigterm", name, check.Skip, r.notReady()))
		return
	}
	ins, err := r.s.cli.ContainerInspect(ctx, r.id)
	if err != nil || !ins.State.Running {
		r.set(check.NewResult("sigterm", name, check.Skip, "it was not running"))
		return
	}
	t0 := time.Now()
	if err := r.s.cli.ContainerKill(ctx, r.id, "SIGTERM"); err != nil {
		r.set(check.NewResult("sigterm", name, check.Skip, fmt.Sprintf("sending SIGTERM: %v", err)))
		return
	}
	for {
		ins, err := r.s.cli.ContainerInspect(ctx, r.id)
		if err != nil {
			r.set(check.NewResult("sigterm", name, check.Skip, fmt.Sprintf("inspecting after SIGTERM: %v", err)))
			return
		}
		if !ins.State.Running {
			r.set(check.NewResult("sigterm", name, check.Pass, fmt.Sprintf("exited %s after SIGTERM (code %d)", check.FormatDuration(time.Since(t0)), ins.State.ExitCode)))
			return
		}
		if time.Since(t0) >= r.o.StopTimeout {
			r.set(check.Sigterm(name, time.Since(t0), r.o.StopTimeout, true, 0, r.img.Command(), false))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
	}
}

// logs returns a container's output (both streams), up to 1MiB.
func (r *compRun) logs(ctx context.Context, id string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := r.s.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "1000"})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = stdcopy.StdCopy(&b, &b, io.LimitReader(rc, 1<<20))
	return b.String()
}

// lastLines returns the last n non-empty lines of s, trimmed.
func lastLines(s string, n int) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
