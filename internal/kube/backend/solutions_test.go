package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/solution"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// TestRefused: the API server's 403 for aim's own service account becomes
// a ForbiddenError (answered 403 with the missing permission), wrapped or
// not; other errors pass unchanged. Regression: the chart's API Role
// lacked deployments/scale, and aim wake answered 500.
func TestRefused(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments/scale"}, "x-web",
		errors.New(`User "system:serviceaccount:aim:aim-api" cannot patch resource "deployments/scale"`))
	other := errors.New("connection refused")
	notFound := apierrors.NewNotFound(schema.GroupResource{Group: "aim.dev", Resource: "solutions"}, "x")
	tests := []struct {
		name      string
		err       error
		forbidden bool
	}{
		{"nil", nil, false},
		{"forbidden", forbidden, true},
		{"forbidden, wrapped", fmt.Errorf("scaling deployment x-web to 1: %w", forbidden), true},
		{"not found", notFound, false},
		{"other", other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := refused("waking solution x", tt.err)
			var fe *solution.ForbiddenError
			if errors.As(got, &fe) != tt.forbidden {
				t.Fatalf("refused(%v) = %v; a ForbiddenError: %v, want %v", tt.err, got, !tt.forbidden, tt.forbidden)
			}
			if !tt.forbidden && got != tt.err {
				t.Errorf("refused(%v) = %v, want it unchanged", tt.err, got)
			}
			if tt.forbidden && !errors.Is(got, tt.err) {
				t.Errorf("the ForbiddenError does not wrap %v", tt.err)
			}
		})
	}
}

// TestPullHint: a pod whose pull the registry refused for credentials
// fails the deploy naming the registry and the login to give; another
// pull failure gets no such hint.
func TestPullHint(t *testing.T) {
	why := `pod shop-web-1: ErrImagePull: failed to pull image "r.example.com:5000/acme/web:1": failed to authorize: 401 Unauthorized`
	got := pullHint(why, "r.example.com:5000/acme/web:1")
	if !strings.Contains(got, "registry r.example.com:5000") || !strings.Contains(got, "aim registry login r.example.com:5000") {
		t.Errorf("pullHint = %q", got)
	}
	if got := pullHint("pod shop-web-1: ErrImagePull: manifest unknown", "r.example.com:5000/acme/web:1"); got != "" {
		t.Errorf("a missing image got the hint %q", got)
	}
}

// TestComponentProgressPullGrace: a failed pull fails the deploy only
// once it has kept failing for pullGrace; one that passes in between
// starts the count again, and a crash fails at once. Regression: CI's
// first pull of a built image got a 401 (the kubelet had not read the
// pod's pull Secret yet), and the deploy failed though the kubelet's
// retry pulled it.
func TestComponentProgressPullGrace(t *testing.T) {
	pod := func(uid, reason string, restarts int32) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: types.UID(uid), Labels: map[string]string{v1alpha1.LabelComponent: "web"}}}
		cs := corev1.ContainerStatus{Name: "web", RestartCount: restarts}
		if reason != "" {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason}
		} else {
			cs.State.Running = &corev1.ContainerStateRunning{}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		return p
	}
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		at     time.Duration
		pod    corev1.Pod
		fatal  bool
		reason string
	}{
		{0, pod("a", "ErrImagePull", 0), false, "a first failure may pass"},
		{10 * time.Second, pod("a", "ImagePullBackOff", 0), false, "backing off, within the grace"},
		{20 * time.Second, pod("a", "ContainerCreating", 0), false, "the retry pulled"},
		{25 * time.Second, pod("a", "ErrImagePull", 0), false, "a new failure counts from now"},
		{50 * time.Second, pod("a", "ImagePullBackOff", 0), false, "25 s is within the grace"},
		{55 * time.Second, pod("a", "ErrImagePull", 0), true, "30 s of failing pulls"},
		{0, pod("b", "ErrImageNeverPull", 0), true, "a missing image that is never pulled fails at once"},
		{0, pod("c", "", 1), true, "a restart fails at once"},
	}
	pulls := pullFailures{}
	for _, s := range steps {
		_, fatal := componentProgress([]corev1.Pod{s.pod}, "web", pulls, t0.Add(s.at))
		if fatal != s.fatal {
			t.Errorf("at %s, pod %s %s: fatal %v, want %v (%s)", s.at, s.pod.UID, s.pod.Status.ContainerStatuses[0].State.Waiting, fatal, s.fatal, s.reason)
		}
	}
}
