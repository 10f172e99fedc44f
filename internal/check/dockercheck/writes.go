package dockercheck

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/docker/docker/api/types/container"
)

// probeWrites judges read-only-fs. The component's twin runs with a
// writable root filesystem; once it answers (or the start-up limit
// passes), the engine's diff of its filesystem lists what it wrote outside
// /tmp. A write that the read-only run refused leaves no diff there, so
// the diff of the twin is the evidence, and the read-only run's complaint
// ("read-only file system") is quoted beside it.
func (r *compRun) probeWrites(ctx context.Context) error {
	name := r.comp.Name
	if r.startFailed != nil {
		r.set(check.NewResult("read-only-fs", name, check.Skip, "the process never started"))
		return nil
	}
	deadline := time.Now().Add(r.o.StartTimeout)
	ip := ""
	for {
		ins, err := r.s.cli.ContainerInspect(ctx, r.twinID)
		if err != nil {
			return fmt.Errorf("inspecting the writable run of %s: %w", name, err)
		}
		if ep := ins.NetworkSettings.Networks[r.s.net]; ep != nil {
			ip = ep.IPAddress
		}
		if !ins.State.Running {
			break
		}
		if ip != "" {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := check.Get(pctx, r.hc, fmt.Sprintf("%s:8080", ip), "", "/")
			cancel()
			if err == nil {
				// Let a write that follows the first request land.
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(300 * time.Millisecond):
				}
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
	changes, err := r.s.cli.ContainerDiff(ctx, r.twinID)
	if err != nil {
		r.set(check.NewResult("read-only-fs", name, check.Skip, fmt.Sprintf("the engine gives no diff of the writable run: %v", err)))
		return nil
	}
	wrote := withoutVolumes(writtenFiles(changes), r.comp)
	r.outsideWrites = wrote
	var refused []string
	for _, l := range strings.Split(r.logs(ctx, r.id), "\n") {
		if strings.Contains(strings.ToLower(l), "read-only file system") {
			refused = append(refused, strings.TrimSpace(l))
		}
	}
	var ev []string
	if len(wrote) > 0 {
		const show = 5
		s := "wrote " + strings.Join(wrote[:min(show, len(wrote))], ", ")
		if len(wrote) > show {
			s += fmt.Sprintf(" and %d more", len(wrote)-show)
		}
		ev = append(ev, s)
	}
	if len(refused) > 0 {
		ev = append(ev, "read-only, it said: "+strings.Join(lastLines(strings.Join(refused, "\n"), 2), " | "))
	}
	if len(ev) > 0 {
		r.set(check.NewResult("read-only-fs", name, check.Fail, strings.Join(ev, "; ")))
		return nil
	}
	r.set(check.NewResult("read-only-fs", name, check.Pass, "wrote nothing outside /tmp"))
	return nil
}

// writtenFiles turns the engine's diff into the paths written: the
// leaves, since the diff also lists every directory above a change.
func writtenFiles(changes []container.FilesystemChange) []string {
	paths := make([]string, 0, len(changes))
	for _, c := range changes {
		if c.Path == "/tmp" || strings.HasPrefix(c.Path, "/tmp/") {
			continue
		}
		paths = append(paths, c.Path)
	}
	sort.Strings(paths)
	var out []string
	for i, p := range paths {
		if i+1 < len(paths) && strings.HasPrefix(paths[i+1], p+"/") {
			continue
		}
		out = append(out, p)
	}
	return out
}
