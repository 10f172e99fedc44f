package spec

import (
	"fmt"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Writable is a directory a component may write: aim mounts an empty
// tmpfs (Kubernetes: an emptyDir in memory) there, owned by the user the
// component runs as, while the root filesystem stays read-only. What it
// holds is in memory and counted in the component's memory limit, and it
// is gone when the replica stops (a sleep, a deploy). In aim.yaml a path
// (/var/lib/nginx) or a mapping with a size ({path: /home/app/.cache,
// size: 256Mi}).
type Writable struct {
	// Path is a clean absolute path, not /, not under /tmp, /proc, /sys
	// or /dev, and neither above nor below another writable path.
	Path string `yaml:"path" json:"path"`
	// Size bounds what the directory holds. Zero in aim.yaml means
	// DefaultWritableSize; Parse fills it.
	Size ByteSize `yaml:"size,omitempty" json:"size,omitempty"`
}

// DefaultWritableSize is a writable path's size unless it names one: as
// much as /tmp's.
const DefaultWritableSize ByteSize = 64 << 20

// maxWritable bounds the writable paths of a component.
const maxWritable = 16

// UnmarshalYAML takes the short form (a path) or the long one (path and
// size). The long form's keys are checked here: a node's own Decode does
// not refuse unknown fields.
func (w *Writable) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		w.Path = n.Value
		return nil
	case yaml.MappingNode:
	default:
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: expected a path or {path, size}, got a list", n.Line, n.Column)}}
	}
	var errs []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "path":
			if v.Kind != yaml.ScalarNode {
				errs = append(errs, fmt.Sprintf("line %d: column %d: expected a path, got a list or mapping", v.Line, v.Column))
				continue
			}
			w.Path = v.Value
		case "size":
			if err := w.Size.UnmarshalYAML(v); err != nil {
				errs = append(errs, err.(*yaml.TypeError).Errors...)
			}
		default:
			// The value's column locates the field (the index keeps
			// values' positions, not keys').
			errs = append(errs, fmt.Sprintf("line %d: column %d: field %s not found in type spec.Writable", v.Line, v.Column, k.Value))
		}
	}
	if len(errs) > 0 {
		return &yaml.TypeError{Errors: errs}
	}
	return nil
}

// reservedMounts are what the engine and the kernel put in a container:
// a tmpfs over them would hide or break them. /tmp is aim's own.
var reservedMounts = []string{"/tmp", "/proc", "/sys", "/dev"}

// dirProblem says why p, neither empty nor "/", cannot be a directory aim
// mounts something at (a volume, a writable path's tmpfs), or "";
// example is one that could be.
func dirProblem(p, example string) string {
	switch {
	case strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Sprintf("%q has a control character", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is not an absolute path: start it with /, e.g. %s", p, example)
	case strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./"):
		return fmt.Sprintf("%q has . or .. in it: write the path it stands for, e.g. %s", p, path.Clean(p))
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not a clean path: write %s", p, path.Clean(p))
	case strings.ContainsAny(p, ":,"):
		// The engine's mount and tmpfs options are split on them.
		return fmt.Sprintf("%q has a : or a , which the engine's mount options cannot hold", p)
	}
	for _, r := range reservedMounts {
		if !Within(p, r) {
			continue
		}
		if r == "/tmp" {
			return fmt.Sprintf("%q is under /tmp, aim's own tmpfs (64Mi, writable already): choose another directory, e.g. %s", p, example)
		}
		return fmt.Sprintf("%q is under %s, which the engine and the kernel mount: choose another directory, e.g. %s", p, r, example)
	}
	return ""
}

// Within reports whether p is dir or below it.
func Within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// validateWritable checks component f's writable paths.
func validateWritable(c Component, f string, add func(field, format string, args ...any)) {
	if len(c.Writable) > maxWritable {
		add(f+".writable", "has %d paths; at most %d", len(c.Writable), maxWritable)
		return
	}
	seen := map[string]int{}
	for j, w := range c.Writable {
		wf := fmt.Sprintf("%s.writable[%d]", f, j)
		p := w.Path
		switch {
		case p == "":
			add(wf, "needs a path, e.g. /var/lib/nginx")
			continue
		case p == "/":
			add(wf, `"/" would make the whole root filesystem writable: name the directories the program writes, e.g. /var/lib/nginx`)
			continue
		}
		if msg := dirProblem(p, "/var/lib/nginx"); msg != "" {
			add(wf, "%s", msg)
			continue
		}
		if k, ok := seen[p]; ok {
			add(wf, "%q is named twice (also writable[%d])", p, k)
			continue
		}
		for k, q := range c.Writable[:j] {
			if _, ok := seen[q.Path]; ok && (Within(p, q.Path) || Within(q.Path, p)) {
				add(wf, "%q overlaps writable[%d] %q: one tmpfs would hide the other; keep the one above", p, k, q.Path)
				break
			}
		}
		for k, v := range c.Volumes {
			if Within(p, v.Path) || Within(v.Path, p) {
				add(wf, "%q overlaps volumes[%d] %q: a tmpfs and a volume at one place would hide one another; keep the volume", p, k, v.Path)
				break
			}
		}
		seen[p] = j
		if m := c.Resources.Memory; m > 0 && w.Size > m {
			add(wf+".size", "%s is above the component's memory %s, which it counts in", w.Size, m)
		}
	}
}

// validateGPU checks component f's resources.gpu and gpuType.
func validateGPU(r Resources, f string, add func(field, format string, args ...any)) {
	switch {
	case r.GPU < 0:
		add(f+".resources.gpu", "must not be negative")
	case r.GPU > 16:
		add(f+".resources.gpu", "is %d; a replica has at most 16 GPUs", r.GPU)
	}
	if r.GPUType == "" {
		return
	}
	if r.GPU == 0 {
		add(f+".resources.gpuType", "only goes with gpu: add gpu: 1")
	}
	if len(r.GPUType) > 63 || !labelValue.MatchString(r.GPUType) {
		add(f+".resources.gpuType", "%q is not a node label value like NVIDIA-L4 (letters, digits, '-', '_', '.', at most 63)", r.GPUType)
	}
}
