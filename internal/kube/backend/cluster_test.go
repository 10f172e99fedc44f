//go:build cluster

// The backend against a real kube-apiserver and etcd (envtest), with no
// operator: what it writes is what the API server keeps.
//
//	go test -tags cluster ./internal/kube/backend/ -run Cluster
//
// It needs etcd and kube-apiserver as test/apiserver says.
package backend

import (
	"context"
	"errors"
	"testing"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/test/apiserver"
)

// TestClusterOwner pins the owner annotation: the first deploy of a name
// writes it, an update keeps it, and another owner's update is refused
// before the spec changes.
func TestClusterOwner(t *testing.T) {
	s, err := New(apiserver.Start(t, "../../../deploy/helm/aim/crds"), Config{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := &spec.Manifest{Name: "hello", Components: []spec.Component{{Name: "web", Image: "aim-test/server:1"}}}
	spec1 := v1alpha1.FromManifest(m, nil)
	if _, _, err := s.apply(ctx, "hello", "acme", spec1); err != nil {
		t.Fatal(err)
	}
	owner := func() string {
		t.Helper()
		sol := &v1alpha1.Solution{}
		if err := s.client.Get(ctx, s.key("hello"), sol); err != nil {
			t.Fatal(err)
		}
		if in := s.info(sol); in.Owner != sol.Annotations[AnnotationOwner] {
			t.Errorf("info says owner %q, the annotation %q", in.Owner, sol.Annotations[AnnotationOwner])
		}
		return sol.Annotations[AnnotationOwner]
	}
	if got := owner(); got != "acme" {
		t.Errorf("created with owner %q, want acme", got)
	}
	spec2 := spec1
	spec2.Title = "Hello again"
	if _, _, err := s.apply(ctx, "hello", "", spec2); err != nil {
		t.Fatal(err)
	}
	if got := owner(); got != "acme" {
		t.Errorf("an admin's update left owner %q, want acme", got)
	}
	spec3 := spec1
	spec3.Title = "Taken over"
	var oe *solution.OwnedError
	if _, _, err := s.apply(ctx, "hello", "beta", spec3); !errors.As(err, &oe) {
		t.Fatalf("another provider's update: %v, want an OwnedError", err)
	}
	sol := &v1alpha1.Solution{}
	if err := s.client.Get(ctx, s.key("hello"), sol); err != nil {
		t.Fatal(err)
	}
	if sol.Spec.Title != "Hello again" || owner() != "acme" {
		t.Errorf("the refused update changed the Solution: title %q, owner %q", sol.Spec.Title, owner())
	}
	// The CRD does not carry visibility yet: the manifest it gives back
	// is public, and says so.
	if in := s.info(sol); in.Visibility == "" {
		t.Error("no visibility")
	}
}
