package backend

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
