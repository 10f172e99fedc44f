package dockercheck

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/spec"
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
	changes = withoutMountPoints(changes, r.comp)
	wrote := withoutVolumes(writtenFiles(changes), r.comp)
	r.outsideWrites = wrote
	fix := r.proposeWritable(ctx, changes)
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
		res := check.NewResult("read-only-fs", name, check.Fail, strings.Join(ev, "; "))
		if len(wrote) > 0 {
			res.Fix = fix
			r.writableFix = fix
		}
		r.set(res)
		return nil
	}
	if len(r.comp.Writable) > 0 {
		r.set(check.NewResult("read-only-fs", name, check.Pass, "wrote nothing outside /tmp and its writable paths"))
		return nil
	}
	r.set(check.NewResult("read-only-fs", name, check.Pass, "wrote nothing outside /tmp"))
	return nil
}

// proposeWritable is read-only-fs's fix for what the twin wrote: the
// writable: line, and what the image has that its tmpfs would hide (read
// from the twin, less what the twin added).
func (r *compRun) proposeWritable(ctx context.Context, changes []container.FilesystemChange) string {
	dirs, atRoot := writableDirs(changes)
	added := map[string]bool{}
	for _, c := range changes {
		if c.Kind == container.ChangeAdd {
			added[c.Path] = true
		}
	}
	hidden := map[string][]string{}
	for _, d := range dirs {
		files, more, err := docker.Files(ctx, r.s.cli, r.twinID, d, 20)
		if err != nil {
			r.o.Progress(fmt.Sprintf("%s: reading %s: %v", r.comp.Name, d, err))
			continue
		}
		var kept []string
		for _, f := range files {
			if !added[f] && len(kept) < 3 {
				kept = append(kept, f)
			}
		}
		if len(kept) > 0 && more {
			kept = append(kept, "more")
		}
		if len(kept) > 0 {
			hidden[d] = kept
		}
	}
	return check.WritableFix(mergeWritable(r.comp.Writable, dirs), len(r.comp.Writable) > 0, hidden, atRoot)
}

// mergeWritable is the component's whole writable: line once dirs are
// added: its own paths as it wrote them, less those a new one holds.
func mergeWritable(have []spec.Writable, dirs []string) []string {
	var out []string
	for _, w := range have {
		if slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(w.Path, d+"/") }) {
			continue
		}
		if w.Size != spec.DefaultWritableSize {
			out = append(out, fmt.Sprintf("{path: %s, size: %s}", w.Path, w.Size))
			continue
		}
		out = append(out, w.Path)
	}
	return append(out, dirs...)
}

// writableDirs are the directories a writable: line must name for the
// writes the engine's diff shows, none under another; atRoot are writes
// directly in /, which no writable path can hold. A new file or
// directory needs its parent writable (the directory the program writes
// in), a changed or deleted one too; a new directory at the top, such as
// /data, is a writable path itself.
func writableDirs(changes []container.FilesystemChange) (dirs, atRoot []string) {
	kind := map[string]container.ChangeType{}
	for _, c := range changes {
		if !spec.Within(c.Path, "/tmp") {
			kind[c.Path] = c.Kind
		}
	}
	hasChild := func(p string) bool {
		for q := range kind {
			if strings.HasPrefix(q, p+"/") {
				return true
			}
		}
		return false
	}
	want := map[string]bool{}
	for p, k := range kind {
		parent := path.Dir(p)
		if pk, ok := kind[parent]; ok && pk == container.ChangeAdd {
			continue // under a new directory, which its parent holds
		}
		switch {
		case k != container.ChangeAdd && hasChild(p):
			continue // a directory whose entries changed: they say where
		case parent != "/":
			want[parent] = true
		case k == container.ChangeAdd && hasChild(p):
			want[p] = true
		default:
			atRoot = append(atRoot, p)
		}
	}
	all := make([]string, 0, len(want))
	for d := range want {
		all = append(all, d)
	}
	sort.Strings(all)
	for _, d := range all {
		if len(dirs) > 0 && strings.HasPrefix(d, dirs[len(dirs)-1]+"/") {
			continue
		}
		dirs = append(dirs, d)
	}
	sort.Strings(atRoot)
	return dirs, atRoot
}

// withoutMountPoints drops from the engine's diff the component's
// writable paths and the directories above them: the engine makes them,
// where the image has none, in the container's own layer, to mount the
// tmpfs on. What the program writes there is on the tmpfs, not in the
// diff.
func withoutMountPoints(changes []container.FilesystemChange, comp spec.Component) []container.FilesystemChange {
	var out []container.FilesystemChange
	for _, c := range changes {
		mount := false
		for _, w := range comp.Writable {
			if spec.Within(w.Path, c.Path) {
				mount = true
				break
			}
		}
		if !mount {
			out = append(out, c)
		}
	}
	return out
}

// writtenFiles turns the engine's diff into the paths written: the
// leaves, since the diff also lists every directory above a change.
func writtenFiles(changes []container.FilesystemChange) []string {
	paths := make([]string, 0, len(changes))
	for _, c := range changes {
		if spec.Within(c.Path, "/tmp") {
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
