package operator

import "github.com/aimhub/aim/internal/spec"

// initialReplicas is what a component's Deployment is created with:
// max(scaling.min, 1), or 0 while the solution sleeps.
func initialReplicas(m *spec.Manifest, asleep bool) int32 {
	if asleep {
		return 0
	}
	return max(int32(m.Scaling.Min), 1)
}

// awakeBounds are the replicas an awake component may have: from
// max(min, 1) to max(max, 1). The gateway scales within them; the
// operator only brings a Deployment back inside when the spec moved them.
func awakeBounds(m *spec.Manifest) (lo, hi int32) {
	lo = max(int32(m.Scaling.Min), 1)
	hi = max(int32(m.Scaling.Max), lo)
	return lo, hi
}
