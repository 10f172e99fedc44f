package router

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/spec"
)

func ptr[T any](v T) *T { return &v }

// slice is an EndpointSlice of a component: addrs of ready pods, then
// "~addr" for not-ready ones and "-addr" for terminating ones.
func slice(sol, comp string, addrs ...string) discoveryv1.EndpointSlice {
	s := discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Labels: map[string]string{v1alpha1.LabelSolution: sol, v1alpha1.LabelComponent: comp}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(int32(8080))}},
	}
	for _, a := range addrs {
		ep := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}}
		switch a[0] {
		case '~':
			a, ep.Conditions.Ready = a[1:], ptr(false)
		case '-':
			a, ep.Conditions.Ready, ep.Conditions.Terminating = a[1:], ptr(false), ptr(true)
		}
		ep.Addresses = []string{a}
		s.Endpoints = append(s.Endpoints, ep)
	}
	return s
}

// partComparer is a three-component solution: web at /, api at /api, and
// a private engine; status is its state and conditions.
func partComparer(t *testing.T, state string, conds ...metav1.Condition) (*v1alpha1.Solution, *spec.Manifest) {
	t.Helper()
	sol := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: "pc", Generation: 1},
		Spec: v1alpha1.SolutionSpec{
			Title: "Part Comparer",
			Components: []v1alpha1.Component{
				{Name: "web", Image: "web:1", Public: ptr(true)},
				{Name: "api", Image: "api:1", Public: ptr(true), Paths: []string{"/api"}},
				{Name: "engine", Image: "engine:1"},
			},
			Limits: v1alpha1.Limits{Burst: 5},
		},
		Status: v1alpha1.SolutionStatus{State: state, Conditions: conds},
	}
	m, err := v1alpha1.ToManifest(sol.Name, sol.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return sol, m
}

// cadTeam is an access list of a private solution.
var cadTeam = &v1alpha1.Access{Emails: []string{"ada@example.com"}, Groups: []string{"cad"}}

func manifestOf(t *testing.T, sol *v1alpha1.Solution) *spec.Manifest {
	t.Helper()
	m, err := v1alpha1.ToManifest(sol.Name, sol.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func cond(typ string, ok bool, reason, msg string) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg}
}

var testLimits = func(l spec.Limits) gateway.Limits {
	return gateway.ResolveLimits(l, spec.Limits{RPS: 100, Burst: 200, Body: 1 << 20}, spec.Limits{})
}

func TestBuildRoute(t *testing.T) {
	all := []discoveryv1.EndpointSlice{
		slice("pc", "web", "10.0.0.2", "10.0.0.1"),
		slice("pc", "api", "10.0.0.3"),
		slice("pc", "engine", "10.0.0.4"),
	}
	ready := func(web, api []string) []gateway.Upstream {
		return []gateway.Upstream{
			{Component: "web", Paths: []string{"/"}, Addrs: web},
			{Component: "api", Paths: []string{"/api"}, Addrs: api},
		}
	}
	limits := gateway.Limits{RPS: 100, Burst: 5, Body: 1 << 20}
	tests := []struct {
		name    string
		state   string
		conds   []metav1.Condition
		slices  []discoveryv1.EndpointSlice
		probed  []string
		waking  bool
		invalid bool
		// siblingWait: the private components are ready, but not for
		// SiblingDelay yet.
		siblingWait bool
		// spec edits the Solution's spec; lastGood, when set, edits a copy
		// of it into the earlier valid spec whose manifest the route is
		// built from (the current one being invalid).
		spec, lastGood func(*v1alpha1.SolutionSpec)
		want           gateway.RouteSpec
		wantReady      bool // wakeDone
	}{
		{
			name:   "running: every ready pod of the public components, sorted; the engine is not routed",
			state:  v1alpha1.StateRunning,
			slices: all,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"})},
			wantReady: true,
		},
		{
			name:  "endpoints split over slices, duplicated, terminating and not ready",
			state: v1alpha1.StateRunning,
			slices: []discoveryv1.EndpointSlice{
				slice("pc", "web", "10.0.0.1", "-10.0.0.9"), slice("pc", "web", "10.0.0.1", "~10.0.0.8"),
				slice("pc", "api", "10.0.0.3"), slice("pc", "engine", "10.0.0.4"),
			},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080"}, []string{"10.0.0.3:8080"})},
			wantReady: true,
		},
		{
			name:   "sleeping: no pods, the status says so",
			state:  v1alpha1.StateSleeping,
			conds:  []metav1.Condition{cond(v1alpha1.ConditionSleeping, true, "Idle", "")},
			slices: []discoveryv1.EndpointSlice{slice("pc", "web"), slice("pc", "api", "-10.0.0.3")},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateSleeping, Limits: limits,
				Upstreams: ready(nil, nil)},
		},
		{
			name:   "status still sleeping but the pods are ready: another replica woke it",
			state:  v1alpha1.StateSleeping,
			slices: all,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"})},
			wantReady: true,
		},
		{
			name:   "deploying, the engine not ready: held, with the operator's reason",
			state:  v1alpha1.StateDeploying,
			conds:  []metav1.Condition{cond(v1alpha1.ConditionReady, false, "Deploying", "component web: 0 of 1 replicas available")},
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "~10.0.0.1"), slice("pc", "api", "10.0.0.3")},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateStarting, Limits: limits,
				Reason:    "component web: 0 of 1 replicas available",
				Upstreams: ready(nil, nil)},
		},
		{
			name:   "failed with nothing running",
			state:  v1alpha1.StateFailed,
			conds:  []metav1.Condition{cond(v1alpha1.ConditionFailed, true, "ProgressDeadlineExceeded", "component web: no progress")},
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "~10.0.0.1")},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateFailed, Limits: limits,
				Reason: "component web: no progress", Upstreams: ready(nil, nil)},
		},
		{
			name:   "failed update while the old pods serve: keeps serving them",
			state:  v1alpha1.StateFailed,
			conds:  []metav1.Condition{cond(v1alpha1.ConditionFailed, true, "ProgressDeadlineExceeded", "component web: no progress")},
			slices: all,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"})},
			wantReady: true,
		},
		{
			name:   "waking: probed pods count, but nothing is published until the engine is ready",
			state:  v1alpha1.StateSleeping,
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "~10.0.0.1"), slice("pc", "api", "~10.0.0.3"), slice("pc", "engine", "~10.0.0.4")},
			probed: []string{"10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"},
			waking: true,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateStarting, Reason: "waking", Limits: limits,
				Upstreams: ready(nil, nil)},
		},
		{
			name:   "woken: the probed public pods are routed before the kubelet calls them ready",
			state:  v1alpha1.StateSleeping,
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "~10.0.0.1"), slice("pc", "api", "~10.0.0.3"), slice("pc", "engine", "10.0.0.4")},
			probed: []string{"10.0.0.1:8080", "10.0.0.3:8080"},
			waking: true,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080"}, []string{"10.0.0.3:8080"})},
			wantReady: true,
		},
		{
			name:   "another replica wakes it: the public pods are ready, the engine is not; held",
			state:  v1alpha1.StateSleeping,
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "10.0.0.1"), slice("pc", "api", "10.0.0.3"), slice("pc", "engine", "~10.0.0.4")},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateSleeping, Limits: limits,
				Upstreams: ready(nil, nil)},
		},
		{
			name:        "deploying: the engine is ready, but kube-proxy may not route to it yet; held",
			state:       v1alpha1.StateDeploying,
			conds:       []metav1.Condition{cond(v1alpha1.ConditionReady, false, "Deploying", "component engine: 0 of 1 replicas available")},
			slices:      all,
			siblingWait: true,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateStarting, Limits: limits,
				Reason: "component engine: 0 of 1 replicas available", Upstreams: ready(nil, nil)},
		},
		{
			name:        "waking here, the engine not ready for long enough: not done",
			state:       v1alpha1.StateSleeping,
			slices:      all,
			waking:      true,
			siblingWait: true,
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateStarting, Reason: "waking", Limits: limits,
				Upstreams: ready(nil, nil)},
		},
		{
			name:   "running, the engine crashed: the public pods still serve",
			state:  v1alpha1.StateRunning,
			slices: []discoveryv1.EndpointSlice{slice("pc", "web", "10.0.0.1"), slice("pc", "api", "10.0.0.3"), slice("pc", "engine", "~10.0.0.4")},
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080"}, []string{"10.0.0.3:8080"})},
		},
		{
			name:    "invalid spec and no earlier one",
			state:   v1alpha1.StateFailed,
			slices:  all,
			invalid: true,
			want:    gateway.RouteSpec{Name: "pc", Title: "pc", State: gateway.StateFailed, Reason: "its spec is invalid: spec.components[0].name: bad"},
		},
		{
			name:   "private: the route names the owner and the access list, as aim serve's does",
			state:  v1alpha1.StateRunning,
			slices: all,
			spec:   func(s *v1alpha1.SolutionSpec) { s.Owner, s.Visibility, s.Access = "acme", "private", cadTeam },
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"}),
				Private:   true, Owner: "acme", Access: spec.Access{Emails: []string{"ada@example.com"}, Groups: []string{"cad"}}},
			wantReady: true,
		},
		{
			name:  "private and asleep: still private, so a refused request does not wake it",
			state: v1alpha1.StateSleeping,
			conds: []metav1.Condition{cond(v1alpha1.ConditionSleeping, true, "Idle", "")},
			spec:  func(s *v1alpha1.SolutionSpec) { s.Visibility, s.Access = "private", cadTeam },
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateSleeping, Limits: limits,
				Upstreams: ready(nil, nil), Private: true, Access: spec.Access{Emails: []string{"ada@example.com"}, Groups: []string{"cad"}}},
		},
		{
			name:   "unlisted and owned: open to everyone",
			state:  v1alpha1.StateRunning,
			slices: all,
			spec:   func(s *v1alpha1.SolutionSpec) { s.Owner, s.Visibility = "acme", "unlisted" },
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"}), Owner: "acme"},
			wantReady: true,
		},
		{
			name:    "invalid spec saying private, and no earlier one: private to its owner and the admins",
			state:   v1alpha1.StateFailed,
			slices:  all,
			invalid: true,
			spec:    func(s *v1alpha1.SolutionSpec) { s.Owner, s.Visibility = "acme", "private" },
			want: gateway.RouteSpec{Name: "pc", Title: "pc", State: gateway.StateFailed, Reason: "its spec is invalid: spec.components[0].name: bad",
				Private: true, Owner: "acme"},
		},
		{
			name:     "made private by an invalid edit: private at once, with no access list from the public spec that runs",
			state:    v1alpha1.StateRunning,
			slices:   all,
			invalid:  true,
			spec:     func(s *v1alpha1.SolutionSpec) { s.Visibility = "private" },
			lastGood: func(s *v1alpha1.SolutionSpec) { s.Visibility = "" },
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"}), Private: true},
			wantReady: true,
		},
		{
			name:     "made public by an invalid edit: still private to the access list that runs",
			state:    v1alpha1.StateRunning,
			slices:   all,
			invalid:  true,
			spec:     func(s *v1alpha1.SolutionSpec) { s.Visibility, s.Access = "public", cadTeam },
			lastGood: func(s *v1alpha1.SolutionSpec) { s.Visibility = "private" },
			want: gateway.RouteSpec{Name: "pc", Title: "Part Comparer", State: gateway.StateReady, Limits: limits,
				Upstreams: ready([]string{"10.0.0.1:8080", "10.0.0.2:8080"}, []string{"10.0.0.3:8080"}),
				Private:   true, Access: spec.Access{Emails: []string{"ada@example.com"}, Groups: []string{"cad"}}},
			wantReady: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sol, m := partComparer(t, tt.state, tt.conds...)
			if tt.spec != nil {
				tt.spec(&sol.Spec)
				if !tt.invalid {
					m = manifestOf(t, sol)
				}
			}
			in := &routeInput{sol: sol, m: m, eps: endpointsOf(tt.slices), probed: map[string]bool{}, waking: tt.waking}
			in.privateReady = privateComponentsReady(m, in.eps) && !tt.siblingWait
			for _, a := range tt.probed {
				in.probed[a] = true
			}
			if tt.invalid {
				in.m, in.invalid = nil, &v1alpha1.ValidationError{Problems: []v1alpha1.FieldError{{Field: "spec.components[0].name", Msg: "bad"}}}
			}
			if tt.lastGood != nil {
				good := sol.DeepCopy()
				tt.lastGood(&good.Spec)
				in.m = manifestOf(t, good)
			}
			got := buildRoute(in, testLimits)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("route:\n got %+v\nwant %+v", got, tt.want)
			}
			if d := wakeDone(in); d != tt.wantReady {
				t.Errorf("wakeDone = %v, want %v", d, tt.wantReady)
			}
		})
	}
}

func TestAddStartingPods(t *testing.T) {
	pod := func(name, comp, ip string, phase corev1.PodPhase, deleting bool) corev1.Pod {
		p := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelSolution: "pc", v1alpha1.LabelComponent: comp}},
			Status:     corev1.PodStatus{PodIP: ip, Phase: phase},
		}
		if deleting {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	eps := endpointsOf([]discoveryv1.EndpointSlice{slice("pc", "web", "10.0.0.1", "~10.0.0.2")})
	addStartingPods(eps, []corev1.Pod{
		pod("ready-in-slice", "web", "10.0.0.1", corev1.PodRunning, false),
		pod("starting-in-slice", "web", "10.0.0.2", corev1.PodRunning, false),
		pod("new, not in the slice yet", "web", "10.0.0.3", corev1.PodRunning, false),
		pod("no IP yet", "web", "", corev1.PodPending, false),
		pod("going away", "web", "10.0.0.4", corev1.PodRunning, true),
		pod("exited", "web", "10.0.0.5", corev1.PodFailed, false),
		pod("another component", "api", "10.0.0.6", corev1.PodRunning, false),
	})
	want := map[string]endpoints{
		"web": {ready: []string{"10.0.0.1:8080"}, starting: []string{"10.0.0.2:8080", "10.0.0.3:8080"}},
		"api": {starting: []string{"10.0.0.6:8080"}},
	}
	if !reflect.DeepEqual(eps, want) {
		t.Errorf("got %+v\nwant %+v", eps, want)
	}
}
