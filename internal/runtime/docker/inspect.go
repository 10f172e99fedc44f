package docker

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
)

// Inspect implements runtime.Runtime.
func (d *Docker) Inspect(ctx context.Context, name string) (*runtime.Status, error) {
	all, err := d.status(ctx, name)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("solution %s: %w", name, runtime.ErrNotFound)
	}
	return &all[0], nil
}

// List implements runtime.Runtime.
func (d *Docker) List(ctx context.Context) ([]runtime.Status, error) {
	return d.status(ctx, "")
}

func (d *Docker) status(ctx context.Context, name string) ([]runtime.Status, error) {
	cs, err := d.containers(ctx, name)
	if err != nil {
		return nil, err
	}
	bySol := map[string]map[string][]runtime.Replica{}
	trials := map[string]int{}
	for _, c := range cs {
		sol, comp := c.Labels[LabelSolution], c.Labels[LabelComponent]
		if bySol[sol] == nil {
			bySol[sol] = map[string][]runtime.Replica{}
		}
		if isTrial(c.Labels) {
			trials[sol]++
			continue
		}
		info, err := d.cli.ContainerInspect(ctx, c.ID)
		if errdefs.IsNotFound(err) {
			continue // removed between list and inspect
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting %s: %w", c.ID[:12], err)
		}
		r := runtime.Replica{ID: c.ID, Generation: generationOf(c.Labels), Index: replicaOf(c.Labels), Restarts: info.RestartCount}
		if st := info.State; st != nil {
			r.Running = st.Running && !st.Restarting
			r.ExitCode = st.ExitCode
			r.OOMKilled = st.OOMKilled
			r.Error = st.Error
			r.Pid = st.Pid
			r.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
			r.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
			if r.Restarts > 0 && r.ExitCode == 0 && (st.Running || st.Restarting) {
				// A restart clears the code the process exited with; the
				// engine's events still have it.
				r.ExitCode = d.lastExitCode(ctx, c.ID, info.Created)
			}
		}
		if r.Running && info.NetworkSettings != nil {
			if ep := info.NetworkSettings.Networks[d.networkName(sol)]; ep != nil && ep.IPAddress != "" {
				r.Addr = net.JoinHostPort(ep.IPAddress, strconv.Itoa(spec.Port))
			}
		}
		bySol[sol][comp] = append(bySol[sol][comp], r)
	}
	out := make([]runtime.Status, 0, len(bySol))
	for sol, comps := range bySol {
		st := runtime.Status{Name: sol, Trials: trials[sol]}
		for comp, reps := range comps {
			sort.Slice(reps, func(i, j int) bool { return reps[i].ID < reps[j].ID })
			st.Components = append(st.Components, runtime.ComponentStatus{Name: comp, Replicas: reps})
		}
		sort.Slice(st.Components, func(i, j int) bool { return st.Components[i].Name < st.Components[j].Name })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Logs implements runtime.Runtime. With several containers, their
// streams are merged as they arrive, each line prefixed by its component.
func (d *Docker) Logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	cs, err := d.containers(ctx, name)
	if err != nil {
		return nil, err
	}
	// The newest generation is the one worth reading.
	var newest int64 = -1
	for _, c := range cs {
		if g := generationOf(c.Labels); g > newest {
			newest = g
		}
	}
	var picked []container.Summary
	for _, c := range cs {
		if generationOf(c.Labels) == newest && !isTrial(c.Labels) && (component == "" || c.Labels[LabelComponent] == component) {
			picked = append(picked, c)
		}
	}
	if len(picked) == 0 {
		if component != "" {
			return nil, fmt.Errorf("solution %s has no component %q: %w", name, component, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("solution %s: %w", name, runtime.ErrNotFound)
	}
	tail := "all"
	if opts.Tail > 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	pr, pw := io.Pipe()
	w := &lineWriter{w: pw}
	done := make(chan error, len(picked))
	for _, c := range picked {
		rc, err := d.cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Tail: tail})
		if err != nil {
			pw.CloseWithError(err)
			return nil, fmt.Errorf("reading logs of %s: %w", c.Labels[LabelComponent], err)
		}
		prefix := ""
		if len(picked) > 1 {
			prefix = c.Labels[LabelComponent]
			if replicaOf(c.Labels) > 0 {
				prefix += "#" + c.Labels[LabelReplica]
			}
			prefix += " | "
		}
		go func() {
			defer rc.Close()
			pw := w.prefixed(prefix)
			_, err := stdcopy.StdCopy(pw, pw, rc)
			pw.flush()
			done <- err
		}()
	}
	go func() {
		var first error
		for range picked {
			if err := <-done; err != nil && first == nil && ctx.Err() == nil {
				first = err
			}
		}
		pw.CloseWithError(first)
	}()
	return pr, nil
}

// lastExitCode is the code of a container's latest exit, from the engine's
// "die" events since it was created; 0 when there is none.
func (d *Docker) lastExitCode(ctx context.Context, id, created string) int {
	since := created
	if t, err := time.Parse(time.RFC3339Nano, created); err == nil {
		since = eventTime(t.Add(-time.Second))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msgs, errs := d.cli.Events(ctx, events.ListOptions{
		Since:   since,
		Until:   eventTime(time.Now()), // a past window: the stream ends
		Filters: filters.NewArgs(filters.Arg("type", "container"), filters.Arg("container", id), filters.Arg("event", "die")),
	})
	code := 0
	for {
		select {
		case m := <-msgs:
			if n, err := strconv.Atoi(m.Actor.Attributes["exitCode"]); err == nil {
				code = n
			}
		case <-errs: // io.EOF once the window has been read, or the engine's error
			return code
		}
	}
}

// eventTime is t as the events API reads it: seconds.nanoseconds.
func eventTime(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }
