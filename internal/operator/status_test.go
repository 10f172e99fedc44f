package operator

import (
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// dep is a Deployment with want replicas of which avail are available,
// its current template rolled out.
func dep(want, avail int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: &want},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2, Replicas: want, UpdatedReplicas: want,
			ReadyReplicas: avail, AvailableReplicas: avail,
		},
	}
}

func cond(typ string, ok bool, reason string, at time.Time) metav1.Condition {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	return metav1.Condition{Type: typ, Status: s, Reason: reason, LastTransitionTime: metav1.NewTime(at)}
}

func TestComputeStatus(t *testing.T) {
	stuck := dep(1, 0)
	stuck.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "part-comparer-engine-7d9" has timed out progressing.`,
	}}
	forbidden := dep(1, 0)
	forbidden.Status.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate",
		Message: `pods "part-comparer-engine-7d9-x" is forbidden: violates PodSecurity "restricted:latest"`,
	}}
	old := dep(1, 1)
	old.Generation = 3

	for _, tc := range []struct {
		name      string
		prev      []metav1.Condition
		deps      map[string]*appsv1.Deployment
		state     string
		replicas  int32
		ready     string // the Ready condition's reason
		readyMsg  string
		failed    string // the Failed condition's reason
		failedMsg string
	}{
		{
			name:  "all available",
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "api": dep(2, 2), "engine": dep(1, 1)},
			state: v1alpha1.StateRunning, replicas: 4, ready: ReasonAvailable, readyMsg: "3 of 3 components available", failed: ReasonHealthy,
		},
		{
			name:  "one starting",
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "api": dep(1, 1), "engine": dep(1, 0)},
			state: v1alpha1.StateDeploying, replicas: 2, ready: ReasonDeploying, readyMsg: "component engine: 0 of 1 replicas available", failed: ReasonHealthy,
		},
		{
			name:  "one not created yet",
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "engine": dep(1, 1)},
			state: v1alpha1.StateDeploying, replicas: 2, ready: ReasonDeploying, readyMsg: "component api: not created yet", failed: ReasonHealthy,
		},
		{
			name:  "update not observed",
			deps:  map[string]*appsv1.Deployment{"web": old, "api": dep(1, 1), "engine": dep(1, 1)},
			state: v1alpha1.StateDeploying, replicas: 3, ready: ReasonDeploying, readyMsg: "component web: its update is not yet observed", failed: ReasonHealthy,
		},
		{
			name:  "asleep",
			prev:  []metav1.Condition{cond(v1alpha1.ConditionReady, true, ReasonAvailable, t0.Add(-time.Hour))},
			deps:  map[string]*appsv1.Deployment{"web": dep(0, 0), "api": dep(0, 0), "engine": dep(0, 0)},
			state: v1alpha1.StateSleeping, ready: ReasonSleeping, readyMsg: "asleep until the next request", failed: ReasonHealthy,
		},
		{
			name:  "waking",
			prev:  []metav1.Condition{cond(v1alpha1.ConditionReady, false, ReasonSleeping, t0.Add(-time.Hour))},
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "api": dep(1, 0), "engine": dep(1, 0)},
			state: v1alpha1.StateDeploying, replicas: 1, ready: ReasonWaking, readyMsg: "waking: component api: 0 of 1 replicas available", failed: ReasonHealthy,
		},
		{
			name:  "progress deadline",
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "api": dep(1, 1), "engine": stuck},
			state: v1alpha1.StateFailed, replicas: 2, ready: ReasonDeploying, readyMsg: "component engine: 0 of 1 replicas available",
			failed: ReasonProgressDeadlineExceeded, failedMsg: `component engine: ReplicaSet "part-comparer-engine-7d9" has timed out progressing.`,
		},
		{
			name:  "pods forbidden",
			deps:  map[string]*appsv1.Deployment{"web": dep(1, 1), "api": dep(1, 1), "engine": forbidden},
			state: v1alpha1.StateFailed, replicas: 2, ready: ReasonDeploying, readyMsg: "component engine: 0 of 1 replicas available",
			failed: ReasonReplicaFailure, failedMsg: `component engine: pods "part-comparer-engine-7d9-x" is forbidden: violates PodSecurity "restricted:latest"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol, m := testSolution(t, threeComponents, "")
			sol.Status.Conditions = tc.prev
			st := computeStatus(sol, m, tc.deps, testOptions().withDefaults(), t0)
			if st.State != tc.state {
				t.Errorf("state %q, want %q", st.State, tc.state)
			}
			if st.Replicas != tc.replicas {
				t.Errorf("replicas %d, want %d", st.Replicas, tc.replicas)
			}
			if st.URL != "https://part-comparer.aim.example" {
				t.Errorf("url %q", st.URL)
			}
			r := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if r.Reason != tc.ready || r.Message != tc.readyMsg {
				t.Errorf("Ready %s %q, want %s %q", r.Reason, r.Message, tc.ready, tc.readyMsg)
			}
			f := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionFailed)
			if f.Reason != tc.failed || f.Message != tc.failedMsg {
				t.Errorf("Failed %s %q, want %s %q", f.Reason, f.Message, tc.failed, tc.failedMsg)
			}
			s := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionSleeping)
			if (s.Status == metav1.ConditionTrue) != (tc.state == v1alpha1.StateSleeping) {
				t.Errorf("Sleeping is %s in state %s", s.Status, st.State)
			}
		})
	}
}

// TestComputeStatusKeepsTransitionTimes: a condition that does not change
// keeps the time it last changed, which is what idleness is measured from.
func TestComputeStatusKeepsTransitionTimes(t *testing.T) {
	sol, m := testSolution(t, oneComponent, "")
	deps := map[string]*appsv1.Deployment{"web": dep(1, 1)}
	o := testOptions().withDefaults()
	sol.Status = computeStatus(sol, m, deps, o, t0)
	st := computeStatus(sol, m, deps, o, t0.Add(time.Hour))
	if got := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady).LastTransitionTime.Time; !got.Equal(t0) {
		t.Errorf("Ready changed at %s, want %s", got, t0)
	}
}

func TestSleepDue(t *testing.T) {
	readySince := func(d time.Duration) []metav1.Condition {
		return []metav1.Condition{cond(v1alpha1.ConditionReady, true, ReasonAvailable, t0.Add(-d))}
	}
	for _, tc := range []struct {
		name       string
		conditions []metav1.Condition
		lastActive string
		idle       time.Duration // the solution's scaling.idle; 0 means the operator's 30m
		min        int32
		due        bool
		after      time.Duration
	}{
		{name: "no annotation, ready 10m ago", conditions: readySince(10 * time.Minute), after: 20 * time.Minute},
		{name: "no annotation, ready 31m ago", conditions: readySince(31 * time.Minute), due: true},
		{name: "active 5m ago", conditions: readySince(time.Hour), lastActive: t0.Add(-5 * time.Minute).Format(time.RFC3339Nano), after: 25 * time.Minute},
		{name: "active 30m ago", conditions: readySince(time.Hour), lastActive: t0.Add(-30 * time.Minute).Format(time.RFC3339Nano), due: true},
		{name: "woke after the last activity", conditions: readySince(time.Minute), lastActive: t0.Add(-2 * time.Hour).Format(time.RFC3339Nano), after: 29 * time.Minute},
		{name: "unreadable annotation", conditions: readySince(10 * time.Minute), lastActive: "yesterday", after: 20 * time.Minute},
		{name: "own idle timeout", conditions: readySince(time.Hour), lastActive: t0.Add(-90 * time.Second).Format(time.RFC3339Nano), idle: time.Minute, due: true},
		{name: "min above zero", conditions: readySince(time.Hour), min: 1},
		{name: "not ready", conditions: []metav1.Condition{cond(v1alpha1.ConditionReady, false, ReasonDeploying, t0.Add(-time.Hour))}},
		{name: "no conditions yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol, m := testSolution(t, oneComponent, "")
			if tc.lastActive != "" {
				sol.Annotations = map[string]string{v1alpha1.AnnotationLastActive: tc.lastActive}
			}
			m.Scaling.Idle = 0
			if tc.idle > 0 {
				m.Scaling.Idle = specDuration(tc.idle)
			}
			m.Scaling.Min = int(tc.min)
			st := &v1alpha1.SolutionStatus{Conditions: tc.conditions}
			due, after := sleepDue(sol, st, m, 30*time.Minute, t0)
			if due != tc.due || after != tc.after {
				t.Errorf("sleepDue = %v, %s; want %v, %s", due, after, tc.due, tc.after)
			}
		})
	}
}

func specDuration(d time.Duration) spec.Duration { return spec.Duration(d) }
