//go:build cluster

package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/test/apiserver"
)

// TestClusterRegistryLogins: a login is its owner's Secret; a deploy of
// acme's solution gets a dockerconfigjson Secret with acme's login for
// the registry its image names and no other, named in its
// imagePullSecrets, and its component pulls for every pod. beta's
// solution naming the same image gets no pull Secret but pulls for every
// pod too, so that no node cache gives it acme's image; after acme's
// logout the host stays private.
func TestClusterRegistryLogins(t *testing.T) {
	s, err := New(apiserver.Start(t, "../../../deploy/helm/aim/crds"), Config{Namespace: "default", Logins: refuseWrong{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = s.LoginRegistry(ctx, "acme", "registry.example.com:5000", "acme-bot", []byte("wrong"), "acme ci")
	var ie *solution.InputError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "nothing was kept") {
		t.Fatalf("a login the registry refuses: %v", err)
	}
	if l, err := s.RegistryLogins(ctx, "acme"); err != nil || len(l) != 0 {
		t.Fatalf("the refused login was kept: %+v %v", l, err)
	}
	if hosts, _, err := s.privateHosts(ctx); err != nil || len(hosts) != 0 {
		t.Fatalf("the refused login marked a host private: %v %v", hosts, err)
	}
	if _, err := s.LoginRegistry(ctx, "acme", "registry.example.com:5000", "acme-bot", []byte("s3cret"), "acme ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginRegistry(ctx, "acme", "ghcr.io", "acme", []byte("ghp_unused"), "acme ci"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginRegistry(ctx, "beta", "quay.io", "beta", []byte("beta's"), "beta ci"); err != nil {
		t.Fatal(err)
	}
	if l, err := s.RegistryLogins(ctx, "acme"); err != nil || len(l) != 2 || l[0].Host != "ghcr.io" || l[1].Username != "acme-bot" {
		t.Fatalf("acme's logins: %+v %v", l, err)
	}
	if l, err := s.RegistryLogins(ctx, "beta"); err != nil || len(l) != 1 || l[0].Host != "quay.io" {
		t.Fatalf("beta's logins: %+v %v", l, err)
	}

	const img = "registry.example.com:5000/acme/web:1"
	m := &spec.Manifest{Name: "shop", Components: []spec.Component{
		{Name: "web", Image: img}, {Name: "cache", Image: "redis:7"}}}
	want := v1alpha1.FromManifest(m, nil)
	if err := s.pullSecret(ctx, "shop", "acme", &want); err != nil {
		t.Fatal(err)
	}
	if len(want.ImagePullSecrets) != 1 || want.ImagePullSecrets[0] != v1alpha1.PullSecretName("shop") {
		t.Fatalf("imagePullSecrets %v", want.ImagePullSecrets)
	}
	if !want.Components[0].PullAlways || want.Components[1].PullAlways {
		t.Errorf("pullAlways: web %v, cache %v", want.Components[0].PullAlways, want.Components[1].PullAlways)
	}
	sec := &corev1.Secret{}
	if err := s.client.Get(ctx, s.key(v1alpha1.PullSecretName("shop")), sec); err != nil {
		t.Fatal(err)
	}
	cfg := string(sec.Data[corev1.DockerConfigJsonKey])
	if sec.Type != corev1.SecretTypeDockerConfigJson || !strings.Contains(cfg, `"registry.example.com:5000"`) || !strings.Contains(cfg, "s3cret") ||
		strings.Contains(cfg, "ghcr.io") || strings.Contains(cfg, "quay.io") {
		t.Fatalf("the pull Secret: %s %s", sec.Type, cfg)
	}
	if sec.Annotations[v1alpha1.AnnotationOwner] != "acme" {
		t.Errorf("the pull Secret's owner: %v", sec.Annotations)
	}
	// The API server takes the spec the backend wrote.
	if _, _, err := s.apply(ctx, "shop", "acme", want, v1alpha1.DeployNote{}, nil); err != nil {
		t.Fatal(err)
	}

	copycat := &spec.Manifest{Name: "copycat", Components: []spec.Component{{Name: "web", Image: img}}}
	theirs := v1alpha1.FromManifest(copycat, nil)
	if err := s.pullSecret(ctx, "copycat", "beta", &theirs); err != nil {
		t.Fatal(err)
	}
	if len(theirs.ImagePullSecrets) != 0 || !theirs.Components[0].PullAlways {
		t.Errorf("beta's copy: imagePullSecrets %v, pullAlways %v", theirs.ImagePullSecrets, theirs.Components[0].PullAlways)
	}
	if err := s.client.Get(ctx, s.key(v1alpha1.PullSecretName("copycat")), &corev1.Secret{}); err == nil {
		t.Error("beta's copy has a pull Secret")
	}

	if err := s.LogoutRegistry(ctx, "acme", "registry.example.com:5000"); err != nil {
		t.Fatal(err)
	}
	if err := s.LogoutRegistry(ctx, "acme", "registry.example.com:5000"); !errors.Is(err, solution.ErrNotFound) {
		t.Errorf("logging out again: %v", err)
	}
	again := v1alpha1.FromManifest(m, nil)
	if err := s.pullSecret(ctx, "shop", "acme", &again); err != nil {
		t.Fatal(err)
	}
	if len(again.ImagePullSecrets) != 0 || !again.Components[0].PullAlways {
		t.Errorf("after the logout: imagePullSecrets %v, pullAlways %v", again.ImagePullSecrets, again.Components[0].PullAlways)
	}
	if err := s.client.Get(ctx, s.key(v1alpha1.PullSecretName("shop")), &corev1.Secret{}); err == nil {
		t.Error("after the logout the pull Secret is still there")
	}
}

// refuseWrong is a registry that refuses the password "wrong" only.
type refuseWrong struct{}

func (refuseWrong) Check(_ context.Context, l registry.Login) error {
	if l.Password == "wrong" {
		return fmt.Errorf("registry %s refused the login: %w", l.Host, registry.ErrUnauthorized)
	}
	return nil
}
