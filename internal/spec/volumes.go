package spec

import (
	"fmt"
)

// Volume is a persistent directory of a component: on Docker a named
// volume of the solution, on Kubernetes a PersistentVolumeClaim. Its data
// outlives sleeps, wakes, deploys and `aim rm` (unless --delete-data).
// Components that name the same volume share it; at most one of them
// mounts it read-write, and a solution with a read-write volume runs one
// replica (two writers of one directory corrupt what most programs keep
// there).
type Volume struct {
	// Name is a DNS label, unique in the component; the same name in
	// another component of the solution is the same volume.
	Name string `yaml:"name" json:"name"`
	// Path is the absolute directory the volume is mounted at.
	Path string `yaml:"path" json:"path"`
	// Size is what the volume may hold, e.g. 2Gi. Required: Kubernetes
	// claims it; on Docker it is advisory (docs/operations.md).
	Size ByteSize `yaml:"size" json:"size"`
	// ReadOnly mounts the volume read-only, so that it may be shared by
	// components and replicas.
	ReadOnly bool `yaml:"readOnly,omitempty" json:"readOnly,omitempty"`
}

// SolutionVolume is one volume of a solution, with the components that
// mount it.
type SolutionVolume struct {
	Name string
	Size ByteSize
	// Writer is the component that mounts it read-write; empty when all
	// mount it read-only.
	Writer string
}

// Volumes lists the solution's volumes, each once, in manifest order.
func (m *Manifest) Volumes() []SolutionVolume {
	var out []SolutionVolume
	at := map[string]int{}
	for _, c := range m.Components {
		for _, v := range c.Volumes {
			i, ok := at[v.Name]
			if !ok {
				i = len(out)
				at[v.Name] = i
				out = append(out, SolutionVolume{Name: v.Name, Size: v.Size})
			}
			if !v.ReadOnly && out[i].Writer == "" {
				out[i].Writer = c.Name
			}
		}
	}
	return out
}

// HasWriter reports whether a component mounts a volume read-write: the
// solution then runs one replica, and a new generation starts only once
// the previous one stopped.
func (m *Manifest) HasWriter() bool {
	for _, v := range m.Volumes() {
		if v.Writer != "" {
			return true
		}
	}
	return false
}

// validateVolumes checks each volume and how components share them.
func (m *Manifest) validateVolumes(file string, idx *nodeIndex) []FieldError {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{File: file, Line: idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	type first struct {
		field, comp string
		size        ByteSize
		rw          bool
	}
	seen := map[string]first{}
	for i, c := range m.Components {
		names, paths := map[string]bool{}, map[string]bool{}
		for j, v := range c.Volumes {
			f := fmt.Sprintf("components[%d].volumes[%d]", i, j)
			if err := ValidName(v.Name); err != nil {
				add(f+".name", "%v", err)
			} else if names[v.Name] {
				add(f+".name", "%q is mounted twice by this component", v.Name)
			}
			names[v.Name] = true
			if msg := mountProblem(v.Path); msg != "" {
				add(f+".path", "%s", msg)
			} else if paths[v.Path] {
				add(f+".path", "%q has another volume of this component", v.Path)
			}
			paths[v.Path] = true
			if v.Size == 0 {
				add(f+".size", "is required: how much the volume holds, e.g. 2Gi")
			}
			o, shared := seen[v.Name]
			switch {
			case !shared:
				seen[v.Name] = first{field: f, comp: c.Name, size: v.Size, rw: !v.ReadOnly}
				continue
			case o.comp == c.Name:
				continue
			case v.Size != 0 && o.size != 0 && v.Size != o.size:
				add(f+".size", "is %s, but component %q gives volume %q %s: a shared volume has one size", v.Size, o.comp, v.Name, o.size)
			case o.rw && !v.ReadOnly:
				add(f, "volume %q is already mounted read-write by component %q: one component writes a volume; add readOnly: true here or there", v.Name, o.comp)
			}
			if !v.ReadOnly && !o.rw {
				seen[v.Name] = first{field: o.field, comp: c.Name, size: o.size, rw: true}
			}
		}
	}
	if s := m.Scaling; s.Max > 1 || s.Min > 1 {
		for i, c := range m.Components {
			for j, v := range c.Volumes {
				if !v.ReadOnly {
					add(fmt.Sprintf("components[%d].volumes[%d]", i, j),
						"volume %q is read-write, so the solution runs one replica, but scaling asks for up to %d: set scaling.max: 1, or readOnly: true", v.Name, max(s.Max, s.Min))
				}
			}
		}
	}
	return probs
}

// mountProblem says why p cannot be a volume's mount point, or "".
func mountProblem(p string) string {
	switch p {
	case "":
		return "is required: the absolute directory to mount the volume at, e.g. /data"
	case "/":
		return `"/" would hide the whole image: mount the volume at a directory, e.g. /data`
	}
	return dirProblem(p, "/data")
}
