//go:build kube

package e2ekube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"golang.org/x/crypto/bcrypt"

	"github.com/aimhub/aim/api/v1alpha1"
)

// The private registry of TestRegistryLogin: the registry image the
// chart runs, behind an htpasswd login, in a namespace of its own, at a
// NodePort the node pulls from over HTTP (test/cluster/up.sh's
// PRIVATE_REGISTRY_NODE_PORT).
const (
	privateRegistryNS          = "aim-e2e-private-registry"
	privateRegistryNodePort    = 30501
	privateRegistryForwardPort = 30598
)

// registryLoginManifest is one image: component that never sleeps, so
// that what is asked of it is one answer.
const registryLoginManifest = `name: %s
components:
  - name: web
    image: %s
    resources: {cpu: "100m", memory: 64Mi}
scaling: {min: 1, max: 1}
`

// TestRegistryLogin (issue 17, acceptance 4, on Kubernetes): a solution
// whose image is in a registry that wants a login fails to deploy,
// naming the registry and `aim registry login`; a login with a wrong
// password is refused (the API tries it) and nothing is kept; after its
// provider's login the kubelet pulls it through the solution's pull Secret and it
// answers through the gateway. Another provider naming the same image is
// refused, though the node has it cached: its pods carry no login and
// pull the image afresh (pullAlways).
func TestRegistryLogin(t *testing.T) {
	const user, password = "acme-bot", "pw-private-5b2d90"
	host := privateRegistry(t, user, password)
	// A tag of its own: no node has it cached from an earlier run.
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	local := "acme/server:" + hex.EncodeToString(b)
	if _, err := sh(repo, nil, "docker", "tag", images["testserver-local"], local); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sh(repo, nil, "docker", "rmi", local) })
	pushed, err := pushTo(pushTarget{namespace: privateRegistryNS, service: "registry", forwardPort: privateRegistryForwardPort,
		user: user, password: password, nodeHost: host}, local)
	if err != nil {
		t.Fatal(err)
	}
	ref := pushed[0]
	for _, p := range []string{"acme", "beta"} {
		addProvider(t, p)
	}
	acme := createToken(t, "--provider", "acme", "--name", "e2e-registry-acme")
	beta := createToken(t, "--provider", "beta", "--name", "e2e-registry-beta")
	manifest := func(name string) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(fmt.Sprintf(registryLoginManifest, name, ref)), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	shop, copycat := manifest("reg-shop"), manifest("reg-copycat")
	t.Cleanup(func() {
		for _, s := range []string{"reg-shop", "reg-copycat"} {
			_, _ = aim("rm", s)
		}
		_, _ = aimAs(acme, "", "registry", "logout", host)
	})
	login := "aim registry login " + host

	out, err := aimAs(acme, "", "deploy", shop)
	if err == nil || !strings.Contains(out, "registry "+host) || !strings.Contains(out, login) {
		t.Fatalf("a deploy without a login: want a refusal naming registry %s and `%s`: %v\n%s", host, login, err, out)
	}
	t.Logf("without a login:\n%s", tail(out, 6))

	out, err = aimAs(acme, "wrong\n", "registry", "login", host, "--username", user, "--password-stdin")
	if err == nil || !strings.Contains(out, "registry "+host+" refused the login") || !strings.Contains(out, "nothing was kept") {
		t.Fatalf("a login with a wrong password: want it refused with nothing kept: %v\n%s", err, out)
	}
	if ls, err := aimAs(acme, "", "registry", "ls"); err != nil || strings.Contains(ls, host) {
		t.Fatalf("the refused login was kept: %v\n%s", err, ls)
	}
	if out, err := aimAs(acme, password+"\n", "registry", "login", host, "--username", user, "--password-stdin"); err != nil {
		t.Fatalf("aim registry login: %v\n%s", err, out)
	}
	if ls, err := aimAs(acme, "", "registry", "ls"); err != nil || !strings.Contains(ls, host) || !strings.Contains(ls, user) || strings.Contains(ls, password) {
		t.Fatalf("aim registry ls as acme: %v\n%s", err, ls)
	}
	if ls, err := aim("registry", "ls"); err != nil || strings.Contains(ls, host) {
		t.Errorf("the admins list acme's login: %v\n%s", err, ls)
	}

	if out, err := aimAs(acme, "", "deploy", shop); err != nil {
		t.Fatalf("acme's deploy after its login: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if code, body, _, err := get(ctx, "reg-shop", "/"); err != nil || code != 200 {
		t.Fatalf("reg-shop, deployed from the private registry: %d %v %.200s", code, err, body)
	}
	sol, err := solution(ctx, "reg-shop")
	if err != nil {
		t.Fatal(err)
	}
	if got := sol.Spec.ImagePullSecrets; !slices.Equal(got, []string{v1alpha1.PullSecretName("reg-shop")}) || !sol.Spec.Components[0].PullAlways {
		t.Errorf("reg-shop: imagePullSecrets %v, pullAlways %v; want its own pull Secret and pullAlways", got, sol.Spec.Components[0].PullAlways)
	}
	// One node: from here on it has the image.
	pods, err := podsOf(ctx, "reg-shop", "web")
	if err != nil || len(pods) != 1 || len(pods[0].Status.ContainerStatuses) != 1 || pods[0].Status.ContainerStatuses[0].ImageID == "" {
		t.Fatalf("reg-shop's pod: %d pods, %v; want one that runs the image", len(pods), err)
	}
	node := pods[0].Spec.NodeName

	out, err = aimAs(beta, "", "deploy", copycat)
	if err == nil || !strings.Contains(out, "registry "+host) || !strings.Contains(out, login) {
		t.Fatalf("beta's deploy of acme's private image: want a refusal naming `%s`: %v\n%s", login, err, out)
	}
	t.Logf("beta, refused:\n%s", tail(out, 6))
	if sol, err := solution(ctx, "reg-copycat"); err != nil || len(sol.Spec.ImagePullSecrets) != 0 || !sol.Spec.Components[0].PullAlways {
		t.Errorf("reg-copycat: %v; want no imagePullSecrets and pullAlways", err)
	}
	if _, err := kc.CoreV1().Secrets(ns).Get(ctx, v1alpha1.PullSecretName("reg-copycat"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("reg-copycat has a pull Secret (%v): beta has no login", err)
	}
	pods, err = podsOf(ctx, "reg-copycat", "web")
	if err != nil || len(pods) == 0 {
		t.Fatalf("reg-copycat's pods: %d, %v", len(pods), err)
	}
	for _, p := range pods {
		c := p.Spec.Containers[0]
		if c.ImagePullPolicy != corev1.PullAlways || p.Spec.NodeName != node || c.Image != ref {
			t.Errorf("reg-copycat's pod %s on %s: image %s, policy %s; want %s on %s (which has it) pulled Always",
				p.Name, p.Spec.NodeName, c.Image, c.ImagePullPolicy, ref, node)
		}
		// The chart's own pull Secret (its in-cluster registry's) is on
		// every pod; none may hold a login to host.
		for _, ps := range p.Spec.ImagePullSecrets {
			sec, err := kc.CoreV1().Secrets(ns).Get(ctx, ps.Name, metav1.GetOptions{})
			if err != nil {
				t.Errorf("reg-copycat's pull Secret %s: %v", ps.Name, err)
			} else if strings.Contains(string(sec.Data[corev1.DockerConfigJsonKey]), `"`+host+`"`) {
				t.Errorf("reg-copycat's pod %s pulls with Secret %s, which has a login to %s", p.Name, ps.Name, host)
			}
		}
	}

	if out, err := aimAs(acme, "", "registry", "logout", host); err != nil {
		t.Fatalf("aim registry logout: %v\n%s", err, out)
	}
	if ls, err := aimAs(acme, "", "registry", "ls"); err != nil || strings.Contains(ls, host) {
		t.Errorf("after the logout, aim registry ls: %v\n%s", err, ls)
	}
	// Its pull Secret goes with its next deploy; until then it serves.
	if code, body, _, err := get(ctx, "reg-shop", "/"); err != nil || code != 200 {
		t.Errorf("reg-shop after acme's logout: %d %v %.200s", code, err, body)
	}
}

// privateRegistry runs the registry image the chart runs, hardened as
// the chart runs it, behind an htpasswd login of user and password, in
// namespace privateRegistryNS (removed when the test ends), and returns
// it as the node pulls from it: <node address>:privateRegistryNodePort.
func privateRegistry(t *testing.T, user, password string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	removeNamespace := func(ctx context.Context) error {
		err := kc.CoreV1().Namespaces().Delete(ctx, privateRegistryNS, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return waitFor(2*time.Minute, 500*time.Millisecond, "namespace "+privateRegistryNS+" gone", func() (bool, error) {
			_, err := kc.CoreV1().Namespaces().Get(ctx, privateRegistryNS, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		})
	}
	// One left by an interrupted run goes first.
	if err := removeNamespace(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := kubectl("logs", "-n", privateRegistryNS, "deploy/registry", "--tail", "30")
			t.Logf("the private registry's last lines:\n%s", out)
		}
		if err := removeNamespace(context.Background()); err != nil {
			t.Errorf("removing the private registry: %v", err)
		}
	})
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	labels := map[string]string{"app": "private-registry"}
	no, yes := false, true
	nobody := int64(65534)
	objects := []func() error{
		func() error {
			_, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: privateRegistryNS}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kc.CoreV1().Secrets(privateRegistryNS).Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: "registry"},
				Data: map[string][]byte{
					"htpasswd":    []byte(user + ":" + string(hash) + "\n"),
					"http-secret": []byte(hex.EncodeToString(secret)),
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			replicas := int32(1)
			_, err := kc.AppsV1().Deployments(privateRegistryNS).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "registry", Labels: labels},
				Spec: appsv1.DeploymentSpec{
					Replicas: &replicas,
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							AutomountServiceAccountToken: &no,
							SecurityContext: &corev1.PodSecurityContext{
								RunAsNonRoot: &yes, RunAsUser: &nobody, RunAsGroup: &nobody, FSGroup: &nobody,
								SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
							},
							Containers: []corev1.Container{{
								Name: "registry", Image: images["registry"], ImagePullPolicy: corev1.PullNever,
								Env: []corev1.EnvVar{
									{Name: "REGISTRY_AUTH", Value: "htpasswd"},
									{Name: "REGISTRY_AUTH_HTPASSWD_REALM", Value: "private"},
									{Name: "REGISTRY_AUTH_HTPASSWD_PATH", Value: "/etc/registry-auth/htpasswd"},
									{Name: "REGISTRY_HTTP_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
										LocalObjectReference: corev1.LocalObjectReference{Name: "registry"}, Key: "http-secret"}}},
								},
								Ports: []corev1.ContainerPort{{Name: "registry", ContainerPort: 5000}},
								// /v2/ answers 401 under htpasswd; the TCP port is enough.
								ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("registry")}}},
								SecurityContext: &corev1.SecurityContext{
									AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes,
									Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
								},
								VolumeMounts: []corev1.VolumeMount{
									{Name: "data", MountPath: "/var/lib/registry"},
									{Name: "auth", MountPath: "/etc/registry-auth", ReadOnly: true},
									{Name: "tmp", MountPath: "/tmp"},
								},
							}},
							Volumes: []corev1.Volume{
								{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
								{Name: "auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
									SecretName: "registry", Items: []corev1.KeyToPath{{Key: "htpasswd", Path: "htpasswd"}}}}},
								{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
							},
						},
					},
				},
			}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := kc.CoreV1().Services(privateRegistryNS).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "registry"},
				Spec: corev1.ServiceSpec{
					Type:     corev1.ServiceTypeNodePort,
					Selector: labels,
					Ports: []corev1.ServicePort{{Name: "registry", Port: 5000, TargetPort: intstr.FromString("registry"),
						NodePort: privateRegistryNodePort}},
				},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range objects {
		if err := create(); err != nil {
			t.Fatalf("creating the private registry: %v", err)
		}
	}
	if err := waitFor(2*time.Minute, 500*time.Millisecond, "the private registry ready", func() (bool, error) {
		d, err := kc.AppsV1().Deployments(privateRegistryNS).Get(ctx, "registry", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return d.Status.ReadyReplicas == 1, fmt.Errorf("%d ready replicas", d.Status.ReadyReplicas)
	}); err != nil {
		t.Fatal(err)
	}
	return privateRegistryHost
}
