package operator

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

// Reasons of the conditions the operator sets.
const (
	ReasonAvailable = "Available"
	ReasonDeploying = "Deploying"
	ReasonWaking    = "Waking"
	ReasonSleeping  = "Sleeping"
	ReasonIdle      = "Idle"
	ReasonAwake     = "Awake"
	ReasonHealthy   = "Healthy"
	// ReasonInvalidSpec: the spec breaks a rule the schema cannot
	// express; the message names the field.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNameConflict: an object the solution needs belongs to another.
	ReasonNameConflict = "NameConflict"
	// ReasonApplyFailed: the API server refused an object.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonProgressDeadlineExceeded: a rollout made no progress (the
	// image does not pull, the process crashes or never listens).
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonReplicaFailure: pods cannot be created (a quota, an admission
	// policy such as Pod Security).
	ReasonReplicaFailure = "ReplicaFailure"
)

// failure is why a solution cannot be served; nil when nothing is wrong.
type failure struct {
	reason, msg string
}

func (f *failure) Error() string { return f.reason + ": " + f.msg }

// replicasOf is a Deployment's spec.replicas, which the API server
// defaults to 1.
func replicasOf(d *appsv1.Deployment) int32 {
	if d.Spec.Replicas == nil {
		return 1
	}
	return *d.Spec.Replicas
}

// rolledOut reports whether a Deployment runs its current template with
// every replica available, as `kubectl rollout status` decides it, and if
// not, what it waits for.
func rolledOut(d *appsv1.Deployment) (bool, string) {
	want := replicasOf(d)
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return false, "its update is not yet observed"
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("%d old replicas stopping", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < want:
		return false, fmt.Sprintf("%d of %d replicas available", s.AvailableReplicas, want)
	}
	return true, ""
}

// deploymentFailure reads why a Deployment cannot progress from its
// conditions.
func deploymentFailure(d *appsv1.Deployment) *failure {
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
			return &failure{ReasonReplicaFailure, c.Message}
		case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded":
			return &failure{ReasonProgressDeadlineExceeded, c.Message}
		}
	}
	return nil
}

// computeStatus is the status of a solution whose components' Deployments
// are deps (by component name; a missing one is not created yet), given
// its previous status (for the conditions' transition times). It is pure.
func computeStatus(sol *v1alpha1.Solution, m *spec.Manifest, deps map[string]*appsv1.Deployment, o Options, now time.Time) v1alpha1.SolutionStatus {
	var fail *failure
	st := v1alpha1.SolutionStatus{
		ObservedGeneration: sol.Generation,
		URL:                fmt.Sprintf("%s://%s.%s", o.URLScheme, sol.Name, o.Domain),
		Conditions:         append([]metav1.Condition(nil), sol.Status.Conditions...),
	}
	set := func(typ string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: typ, Status: s, Reason: reason, Message: msg,
			ObservedGeneration: sol.Generation, LastTransitionTime: metav1.NewTime(now),
		})
	}
	asleep := len(deps) > 0
	ready := len(deps) == len(m.Components)
	waitingFor := ""
	for _, c := range m.Components {
		d, ok := deps[c.Name]
		if !ok {
			st.Components = append(st.Components, v1alpha1.ComponentStatus{Name: c.Name})
			if waitingFor == "" {
				waitingFor = fmt.Sprintf("component %s: not created yet", c.Name)
			}
			continue
		}
		want := replicasOf(d)
		st.Components = append(st.Components, v1alpha1.ComponentStatus{Name: c.Name, Replicas: want, ReadyReplicas: d.Status.AvailableReplicas})
		st.Replicas += d.Status.AvailableReplicas
		if want > 0 {
			asleep = false
		}
		if done, why := rolledOut(d); !done || want == 0 {
			ready = false
			if waitingFor == "" {
				if want == 0 {
					why = "scaled to zero"
				}
				waitingFor = fmt.Sprintf("component %s: %s", c.Name, why)
			}
		}
		if fail == nil {
			if f := deploymentFailure(d); f != nil {
				fail = &failure{f.reason, fmt.Sprintf("component %s: %s", c.Name, f.msg)}
			}
		}
	}

	if fail != nil {
		set(v1alpha1.ConditionFailed, true, fail.reason, fail.msg)
	} else {
		set(v1alpha1.ConditionFailed, false, ReasonHealthy, "")
	}
	if asleep {
		set(v1alpha1.ConditionSleeping, true, ReasonIdle, "every component is scaled to zero; the next request wakes it")
	} else {
		set(v1alpha1.ConditionSleeping, false, ReasonAwake, "")
	}
	prev := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionReady)
	switch {
	case asleep:
		set(v1alpha1.ConditionReady, false, ReasonSleeping, "asleep until the next request")
	case ready:
		set(v1alpha1.ConditionReady, true, ReasonAvailable, fmt.Sprintf("%d of %d components available", len(m.Components), len(m.Components)))
	case prev != nil && (prev.Reason == ReasonSleeping || prev.Reason == ReasonWaking):
		set(v1alpha1.ConditionReady, false, ReasonWaking, "waking: "+waitingFor)
	default:
		set(v1alpha1.ConditionReady, false, ReasonDeploying, waitingFor)
	}

	switch {
	case fail != nil:
		st.State = v1alpha1.StateFailed
	case asleep:
		st.State = v1alpha1.StateSleeping
	case ready:
		st.State = v1alpha1.StateRunning
	default:
		st.State = v1alpha1.StateDeploying
	}
	return st
}

// failedStatus is the previous status with the Failed condition set: what
// was observed before stays, since the failure kept the operator from
// looking again.
func failedStatus(sol *v1alpha1.Solution, f *failure, o Options, now time.Time) v1alpha1.SolutionStatus {
	st := *sol.Status.DeepCopy()
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionFailed, Status: metav1.ConditionTrue, Reason: f.reason, Message: f.msg,
		ObservedGeneration: sol.Generation, LastTransitionTime: metav1.NewTime(now),
	})
	st.State, st.ObservedGeneration = v1alpha1.StateFailed, sol.Generation
	st.URL = fmt.Sprintf("%s://%s.%s", o.URLScheme, sol.Name, o.Domain)
	return st
}

// sleepDue says whether an awake solution should sleep now and, if not
// yet, how long until it may. Its last activity is the gateway's
// aim.dev/last-active annotation, or when it last became Ready if that
// is later: so a missing annotation (an operator that restarts, a gateway
// that has not seen a request yet) never puts a solution to sleep early,
// and a solution that just woke gets a full idle period. Solutions that
// are not Ready (deploying, failed) and those with scaling.min above 0
// never sleep. st is the solution's new status.
func sleepDue(sol *v1alpha1.Solution, st *v1alpha1.SolutionStatus, m *spec.Manifest, defaultIdle time.Duration, now time.Time) (due bool, after time.Duration) {
	if m.Scaling.Min > 0 {
		return false, 0
	}
	ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue {
		return false, 0
	}
	last := ready.LastTransitionTime.Time
	if t, ok := lastActive(sol); ok && t.After(last) {
		last = t
	}
	deadline := last.Add(m.IdleTimeout(defaultIdle))
	if !now.Before(deadline) {
		return true, 0
	}
	return false, deadline.Sub(now)
}

// lastActive reads the gateway's annotation; ok is false when it is
// missing or unreadable.
func lastActive(sol *v1alpha1.Solution) (time.Time, bool) {
	a, ok := sol.Annotations[v1alpha1.AnnotationLastActive]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
