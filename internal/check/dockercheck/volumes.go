package dockercheck

import "github.com/aimhub/aim/internal/spec"

// withoutVolumes drops from a run's writes the component's volumes: what
// is written there is kept (docs/packaging.md, "Volumes"), and the engine
// lists a mount point it had to make, and the directories above it, as
// written.
func withoutVolumes(wrote []string, comp spec.Component) []string {
	var out []string
	for _, p := range wrote {
		kept := false
		for _, v := range comp.Volumes {
			kept = kept || spec.Within(p, v.Path) || spec.Within(v.Path, p)
		}
		if !kept {
			out = append(out, p)
		}
	}
	return out
}
