package router

import (
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/spec"
)

// endpoints are one component's pods as its Service's EndpointSlices list
// them.
type endpoints struct {
	// ready are host:port of the pods the kubelet reports ready.
	ready []string
	// starting are host:port of pods that have an address but are not
	// ready yet (nor terminating): a wake probes them itself rather than
	// wait for the kubelet's next readiness probe.
	starting []string
}

// endpointsOf groups a solution's EndpointSlices by component. The
// EndpointSlice controller copies a Service's labels onto its slices, so
// the operator's aim.dev/component label names the component.
func endpointsOf(eps []discoveryv1.EndpointSlice) map[string]endpoints {
	out := map[string]endpoints{}
	for i := range eps {
		s := &eps[i]
		comp := s.Labels[v1alpha1.LabelComponent]
		if comp == "" || s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		port := slicePort(s)
		e := out[comp]
		for _, ep := range s.Endpoints {
			if len(ep.Addresses) == 0 || isTrue(ep.Conditions.Terminating) {
				continue
			}
			addr := net.JoinHostPort(ep.Addresses[0], strconv.Itoa(port))
			// A nil ready condition means ready (the API's rule for
			// consumers that predate the condition).
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				e.ready = append(e.ready, addr)
			} else {
				e.starting = append(e.starting, addr)
			}
		}
		out[comp] = e
	}
	for comp, e := range out {
		// Sorted and unique, so that an unchanged set of pods compares
		// equal however the slices were cut.
		slices.Sort(e.ready)
		slices.Sort(e.starting)
		e.ready = slices.Compact(e.ready)
		e.starting = slices.Compact(e.starting)
		out[comp] = e
	}
	return out
}

// slicePort is the component's port in a slice: the one named http (the
// operator's name for 8080), else the only one, else 8080.
func slicePort(s *discoveryv1.EndpointSlice) int {
	for _, p := range s.Ports {
		if p.Port != nil && (p.Name != nil && *p.Name == "http" || len(s.Ports) == 1) {
			return int(*p.Port)
		}
	}
	return spec.Port
}

func isTrue(b *bool) bool { return b != nil && *b }

// addStartingPods adds to eps the addresses of pods that have an IP but
// are neither ready in the slices nor going away: the kubelet reports a
// new pod's IP with its status, and the EndpointSlice controller copies it
// into the slice a moment later (tens of milliseconds, more on a busy
// control plane), so a wake that watches pods probes them that much
// sooner.
func addStartingPods(eps map[string]endpoints, pods []corev1.Pod) {
	for i := range pods {
		p := &pods[i]
		comp := p.Labels[v1alpha1.LabelComponent]
		if comp == "" || p.Status.PodIP == "" || p.DeletionTimestamp != nil ||
			p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			continue
		}
		addr := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(spec.Port))
		e := eps[comp]
		if slices.Contains(e.ready, addr) || slices.Contains(e.starting, addr) {
			continue
		}
		e.starting = append(e.starting, addr)
		slices.Sort(e.starting)
		eps[comp] = e
	}
}

// routeInput is what a solution's route is computed from.
type routeInput struct {
	sol *v1alpha1.Solution
	// m is the solution's manifest; when the spec is invalid, the last
	// valid one this gateway saw (the operator keeps running what ran),
	// or nil.
	m *spec.Manifest
	// invalid says why the spec is invalid, if it is.
	invalid error
	eps     map[string]endpoints
	// probed are starting addresses that answered this gateway's own
	// probe during a wake.
	probed map[string]bool
	// waking is true while a wake started by this gateway is not yet
	// done: the route then publishes no replica until the whole solution
	// can serve (see wakeDone).
	waking bool
	// privateReady is true when every private component has had a ready
	// replica for a moment (Config.SiblingDelay): its siblings reach
	// it through its Service, whose rules kube-proxy rewrites at most
	// about once a second. Vacuously true without private components.
	privateReady bool
}

// addrsOf are the replicas of a public component the gateway may send
// requests to: the ready ones and those its own probe found answering.
func (in *routeInput) addrsOf(comp string) []string {
	e := in.eps[comp]
	out := append([]string(nil), e.ready...)
	for _, a := range e.starting {
		if in.probed[a] {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

// wakeDone reports whether a woken solution can serve: every public
// component has a replica the gateway can reach, and the private ones are
// ready (privateReady). Private components are reached by their siblings
// through their Services, which route only to ready pods, so for them the
// kubelet's word is the one that counts.
func wakeDone(in *routeInput) bool {
	if in.m == nil || !in.privateReady {
		return false
	}
	for _, c := range in.m.PublicComponents() {
		if len(in.addrsOf(c.Name)) == 0 {
			return false
		}
	}
	return true
}

// privateComponentsReady says whether every private component of m has a
// ready replica.
func privateComponentsReady(m *spec.Manifest, eps map[string]endpoints) bool {
	for _, c := range m.Components {
		if !c.IsPublic() && len(eps[c.Name].ready) == 0 {
			return false
		}
	}
	return true
}

// buildRoute is the gateway's route for a solution. It is pure.
//
// The replicas come from the EndpointSlices, the state from them and the
// Solution's status: a solution whose public components all have
// replicas is ready whatever its status says (the status lags a wake);
// otherwise a failed solution is failed, a sleeping one sleeping, and
// anything else (deploying, waking) starting, so that requests are held.
//
// No replica is published while this gateway's own wake is not done, nor,
// while the operator does not report the solution running, before its
// private components are ready: a public component that answers before
// the engine behind it would fail the first requests.
//
// A private solution's route admits whom its manifest's access list names,
// besides its owner and the admins, as aim serve's does. A spec that says
// private is private even while it is invalid: with no valid private
// manifest to take the access list from, it admits its owner and the
// admins only.
func buildRoute(in *routeInput, limits func(spec.Limits) gateway.Limits) gateway.RouteSpec {
	sol := in.sol
	rs := gateway.RouteSpec{Name: sol.Name, Title: sol.Name, Owner: v1alpha1.OwnerOf(sol),
		Private: sol.Spec.Visibility == string(spec.Private) || in.m != nil && in.m.IsPrivate()}
	if rs.Private && in.m != nil && in.m.IsPrivate() {
		rs.Access = in.m.Access
	}
	if in.m == nil {
		rs.State = gateway.StateFailed
		rs.Reason = "its spec is invalid"
		if in.invalid != nil {
			rs.Reason += ": " + in.invalid.Error()
		}
		return rs
	}
	m := in.m
	rs.Title, rs.Hold, rs.Limits = m.DisplayTitle(), m.Scaling.Hold, limits(m.Limits)
	gate := in.waking && !wakeDone(in) || !in.privateReady && sol.Status.State != v1alpha1.StateRunning
	all := true
	for _, c := range m.PublicComponents() {
		up := gateway.Upstream{Component: c.Name, Paths: c.Paths}
		if !gate {
			up.Addrs = in.addrsOf(c.Name)
		}
		all = all && len(up.Addrs) > 0
		rs.Upstreams = append(rs.Upstreams, up)
	}
	failed := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionFailed)
	switch {
	case all:
		rs.State = gateway.StateReady
	case in.waking:
		rs.State = gateway.StateStarting
		rs.Reason = "waking"
	case failed != nil && failed.Status == metav1.ConditionTrue:
		rs.State = gateway.StateFailed
		rs.Reason = failed.Message
	case sol.Status.State == v1alpha1.StateSleeping || meta.IsStatusConditionTrue(sol.Status.Conditions, v1alpha1.ConditionSleeping):
		rs.State = gateway.StateSleeping
	default:
		rs.State = gateway.StateStarting
		if r := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionReady); r != nil {
			rs.Reason = r.Message
		}
	}
	return rs
}
