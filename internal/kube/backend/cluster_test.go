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
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/test/apiserver"
)

// TestClusterOwner pins the owner: the first deploy of a name writes
// spec.owner, an update keeps it, another owner's update is refused
// before the spec changes, and a Solution whose owner an earlier aim kept
// in the aim.dev/owner annotation keeps that owner, now in its spec.
func TestClusterOwner(t *testing.T) {
	s, err := New(apiserver.Start(t, "../../../deploy/helm/aim/crds"), Config{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := &spec.Manifest{Name: "hello", Components: []spec.Component{{Name: "web", Image: "aim-test/server:1"}},
		Visibility: spec.Private, Access: spec.Access{Emails: []string{"ada@example.com"}}}
	spec1 := v1alpha1.FromManifest(m, nil)
	if _, _, err := s.apply(ctx, "hello", "acme", spec1, v1alpha1.DeployNote{By: "ci"}, nil); err != nil {
		t.Fatal(err)
	}
	get := func(name string) *v1alpha1.Solution {
		t.Helper()
		sol := &v1alpha1.Solution{}
		if err := s.client.Get(ctx, s.key(name), sol); err != nil {
			t.Fatal(err)
		}
		if in := s.info(sol); in.Owner != v1alpha1.OwnerOf(sol) {
			t.Errorf("info says owner %q, the Solution %q", in.Owner, v1alpha1.OwnerOf(sol))
		}
		return sol
	}
	if got := get("hello").Spec.Owner; got != "acme" {
		t.Errorf("created with owner %q, want acme", got)
	}
	spec2 := spec1
	spec2.Title = "Hello again"
	if _, _, err := s.apply(ctx, "hello", "", spec2, v1alpha1.DeployNote{By: "ana"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := get("hello").Spec.Owner; got != "acme" {
		t.Errorf("an admin's update left owner %q, want acme", got)
	}
	// The note of who deployed is for the generation the update made.
	if sol := get("hello"); sol.Annotations[v1alpha1.AnnotationDeploy] != fmt.Sprintf(`{"generation":%d,"by":"ana"}`, sol.Generation) || sol.Generation != 2 {
		t.Errorf("generation %d has the note %s", sol.Generation, sol.Annotations[v1alpha1.AnnotationDeploy])
	}
	// The same spec again changes nothing, the note included.
	if _, _, err := s.apply(ctx, "hello", "", spec2, v1alpha1.DeployNote{By: "bob"}, nil); err != nil {
		t.Fatal(err)
	}
	if sol := get("hello"); sol.Generation != 2 || !strings.Contains(sol.Annotations[v1alpha1.AnnotationDeploy], `"ana"`) {
		t.Errorf("the same spec again: generation %d, note %s", sol.Generation, sol.Annotations[v1alpha1.AnnotationDeploy])
	}
	spec3 := spec1
	spec3.Title = "Taken over"
	var oe *solution.OwnedError
	if _, _, err := s.apply(ctx, "hello", "beta", spec3, v1alpha1.DeployNote{}, nil); !errors.As(err, &oe) {
		t.Fatalf("another provider's update: %v, want an OwnedError", err)
	}
	sol := get("hello")
	if sol.Spec.Title != "Hello again" || sol.Spec.Owner != "acme" {
		t.Errorf("the refused update changed the Solution: title %q, owner %q", sol.Spec.Title, sol.Spec.Owner)
	}
	if in := s.info(sol); in.Visibility != spec.Private || in.Manifest == nil || in.Manifest.Access.Emails[0] != "ada@example.com" {
		t.Errorf("the private solution reads back as %q with %+v", in.Visibility, in.Manifest)
	}

	old := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: "older", Namespace: "default", Annotations: map[string]string{v1alpha1.AnnotationOwner: "acme"}},
		Spec:       v1alpha1.FromManifest(&spec.Manifest{Name: "older", Components: m.Components}, nil),
	}
	if err := s.client.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	if in := s.info(get("older")); in.Owner != "acme" {
		t.Errorf("the annotation's owner reads as %q", in.Owner)
	}
	if _, _, err := s.apply(ctx, "older", "beta", old.Spec, v1alpha1.DeployNote{}, nil); !errors.As(err, &oe) {
		t.Errorf("another provider's update of an annotated Solution: %v, want an OwnedError", err)
	}
	if _, _, err := s.apply(ctx, "older", "acme", old.Spec, v1alpha1.DeployNote{}, nil); err != nil {
		t.Fatal(err)
	}
	if got := get("older").Spec.Owner; got != "acme" {
		t.Errorf("the update put owner %q in the spec, want acme", got)
	}
}

// TestClusterSecrets: a secret is a key of the Secret aim-secrets-<name>,
// which only its owner's calls see; a deploy records when each secret it
// uses was set, setting one again changes that (the operator's hash
// rolls the pods), a secret in use is not removed, and removing the
// solution removes the Secret.
func TestClusterSecrets(t *testing.T) {
	s, err := New(apiserver.Start(t, "../../../deploy/helm/aim/crds"), Config{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.SetSecret(ctx, "chat", "beta", "API_KEY", []byte("beta's"), "beta ci"); err != nil {
		t.Fatal(err)
	}
	// acme claims the name after beta set a secret for it: not acme's.
	if list, err := s.ListSecrets(ctx, "chat", "acme"); err != nil || len(list) != 0 {
		t.Fatalf("acme sees %+v %v", list, err)
	}
	if _, err := s.SetSecret(ctx, "chat", "acme", "API_KEY", []byte("sk-acme"), "acme ci"); err != nil {
		t.Fatal(err)
	}
	m := &spec.Manifest{Name: "chat", Components: []spec.Component{{Name: "web", Image: "aim-test/server:1",
		Env: map[string]spec.EnvValue{"API_KEY": spec.SecretRef("API_KEY"), "MODE": spec.Plain("x")}}}}
	versions, err := s.secretVersions(ctx, m, "acme")
	if err != nil || versions["API_KEY"] == "" {
		t.Fatalf("versions %v %v", versions, err)
	}
	want := v1alpha1.FromManifest(m, nil)
	want.SecretVersions = versions
	if _, _, err := s.apply(ctx, "chat", "acme", want, v1alpha1.DeployNote{By: "acme ci"}, nil); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := s.client.Get(ctx, s.key(v1alpha1.SecretsName("chat")), sec); err != nil || string(sec.Data["API_KEY"]) != "sk-acme" {
		t.Fatalf("the Secret: %v %v", sec.Data, err)
	}
	ch, err := s.SetSecret(ctx, "chat", "acme", "API_KEY", []byte("sk-acme-2"), "acme ci")
	if err != nil || len(ch.Restarted) != 1 || ch.Restarted[0] != "web" {
		t.Fatalf("setting it again: %+v %v", ch, err)
	}
	sol, err := s.fresh(ctx, "chat")
	if err != nil || sol.Spec.SecretVersions["API_KEY"] == versions["API_KEY"] {
		t.Errorf("spec.secretVersions did not change: %v %v", sol.Spec.SecretVersions, err)
	}
	list, err := s.ListSecrets(ctx, "chat", "acme")
	if err != nil || len(list) != 1 || list[0].Name != "API_KEY" || list[0].SetAt.IsZero() || len(list[0].UsedBy) != 1 {
		t.Errorf("acme's list: %+v %v", list, err)
	}
	var ie *solution.InputError
	if err := s.DeleteSecret(ctx, "chat", "acme", "API_KEY"); !errors.As(err, &ie) {
		t.Errorf("removing a secret in use: %v", err)
	}
	// envtest runs no garbage collector, so the Solution's foreground
	// deletion never ends: remove is given a moment, in which it has
	// removed the Secret.
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_ = s.remove(rctx, "chat")
	if err := s.client.Get(ctx, s.key(v1alpha1.SecretsName("chat")), &corev1.Secret{}); err == nil {
		t.Error("the Secret outlived the solution")
	}
}

// TestClusterVolumes: the API lists a solution's claims, which the
// operator made, with their owner; refuses to delete those of a solution
// that exists; and deletes them once it is gone (aim rm --delete-data).
func TestClusterVolumes(t *testing.T) {
	s, err := New(apiserver.Start(t, "../../../deploy/helm/aim/crds"), Config{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.ClaimName("notes", "data"), Namespace: "default",
			Labels:      map[string]string{v1alpha1.LabelSolution: "notes", v1alpha1.LabelVolume: "data"},
			Annotations: map[string]string{v1alpha1.AnnotationOwner: "acme"}},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("2Gi")}}},
	}
	if err := s.client.Create(ctx, claim); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Volumes(ctx, "notes")
	if err != nil || len(vs) != 1 || vs[0].Name != "data" || vs[0].Owner != "acme" || vs[0].Size != 2<<30 || vs[0].Used != -1 {
		t.Fatalf("volumes: %+v, %v", vs, err)
	}
	m := &spec.Manifest{Name: "notes", Components: []spec.Component{{Name: "web", Image: "aim-test/server:1"}}}
	if _, _, err := s.apply(ctx, "notes", "acme", v1alpha1.FromManifest(m, nil), v1alpha1.DeployNote{}, nil); err != nil {
		t.Fatal(err)
	}
	var ie *solution.InputError
	if err := s.DeleteVolume(ctx, "notes", "data"); !errors.As(err, &ie) {
		t.Errorf("deleting the volume of a solution that exists: %v", err)
	}
	if err := s.client.Delete(ctx, &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "notes", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVolume(ctx, "notes", "data"); err != nil {
		t.Fatal(err)
	}
	if vs, err := s.Volumes(ctx, "notes"); err != nil || len(vs) != 0 {
		t.Errorf("after --delete-data: %+v, %v", vs, err)
	}
}
