//go:build cluster

// The reconciler against a real kube-apiserver and etcd (envtest): server-
// side apply, managed fields, the scale subresource, owner references,
// the CRD's schema and RBAC are the API server's own. The operator runs
// with the permissions deploy/manifests (the chart) gives it, and the
// test acts as the gateway with the gateway's. No kubelet or controller
// manager runs, so a stand-in (deploymentStatus) writes the Deployments'
// status as the deployment controller would once every replica is up.
//
//	go test -tags cluster ./internal/operator/ -run Cluster
//
// It needs etcd (Debian's etcd-server) and kube-apiserver: from
// $KUBEBUILDER_ASSETS, else /usr/bin/etcd and the kube-apiserver that
// test/cluster/build.sh puts in ~/.cache/aim/kube/kubernetes-v1.32.4/.
package operator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/test/apiserver"
)

// clusterEgressDeny is the operator's deny list here: a node's public
// address, say.
const clusterEgressDeny = "192.0.2.2/32"

// env is the API server every test in this file shares.
type env struct {
	c   client.Client // the cluster's admin
	cfg *rest.Config  // the admin's
	// gateway acts as the chart's gateway service account: with its
	// permissions only.
	gateway client.Client
	ns      string
	// applies counts the server-side applies the operator sent.
	applies *atomic.Int64
}

func TestCluster(t *testing.T) {
	cfg := apiserver.Start(t, "../../deploy/helm/aim/crds")
	log := testlog.Logger(t, slog.LevelInfo)
	ctrl.SetLogger(logr.FromSlogHandler(log.Handler()))

	scheme, err := Scheme()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The chart as deploy/manifests renders it: aim-system holds aim and
	// the solutions, and its RBAC is what the operator and the gateway
	// act with below.
	ns := "aim-system"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	applyManifests(ctx, t, c, "../../deploy/manifests/aim.yaml")
	operatorCfg := as(cfg, ns, "aim-operator")
	var applies atomic.Int64
	operatorCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodPatch && req.Header.Get("Content-Type") == "application/apply-patch+yaml" {
				applies.Add(1)
			}
			return rt.RoundTrip(req)
		})
	})
	gw, err := client.New(as(cfg, ns, "aim-gateway"), client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions()
	o.IdleTimeout = time.Hour
	o.NodeGroups = []string{"general", "solutions", "gpu"}
	o.EgressDeny = []string{clusterEgressDeny}
	mgr, err := NewManager(operatorCfg, Config{Options: o, Namespace: ns, Logger: log, LeaderElect: true, LeaderElectionNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		deploymentStatus(ctx, c, ns)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	e := &env{c: c, cfg: cfg, gateway: gw, ns: ns, applies: &applies}
	t.Run("gateway is not admin", func(t *testing.T) {
		// The impersonation is real: what the gateway's role lacks fails.
		err := e.gateway.Create(ctx, &v1alpha1.Solution{
			ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns},
			Spec:       v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: "w:1"}}},
		})
		if !apierrors.IsForbidden(err) {
			t.Errorf("the gateway created a solution: %v", err)
		}
	})
	t.Run("schema", e.testSchema)
	t.Run("invalid spec", e.testInvalidSpec)
	t.Run("serve", e.testServe)
	t.Run("egress", e.testEgress)
	t.Run("sleep and wake", e.testSleepAndWake)
	t.Run("activity keeps it awake", e.testActivity)
	t.Run("name conflict", e.testNameConflict)
	t.Run("nothing to change, nothing applied", e.testNoOpApply)
	t.Run("generations", e.testGenerations)
	t.Run("volumes", e.testVolumes)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// as is cfg acting as a service account of namespace ns.
func as(cfg *rest.Config, ns, sa string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	return c
}

// applyManifests creates every object of a multi-document YAML file; a
// CRD envtest installed already is left as it is.
func applyManifests(ctx context.Context, t *testing.T, c client.Client, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	n := 0
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		err := c.Create(ctx, &u)
		if apierrors.IsAlreadyExists(err) && u.GetKind() == "CustomResourceDefinition" {
			continue
		}
		if err != nil {
			t.Fatalf("%s: creating %s %s: %v", path, u.GetKind(), u.GetName(), err)
		}
		n++
	}
	t.Logf("created the %d objects of %s", n, path)
}

// deploymentStatus stands in for the deployment controller and kubelets
// that envtest lacks: it reports every Deployment's replicas as updated
// and available, but for those whose image is under unavailable/.
func deploymentStatus(ctx context.Context, c client.Client, ns string) {
	for ctx.Err() == nil {
		var l appsv1.DeploymentList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err == nil {
			for i := range l.Items {
				d := &l.Items[i]
				if strings.HasPrefix(d.Spec.Template.Spec.Containers[0].Image, "unavailable/") {
					continue // as if the nodes could not get the image
				}
				n := replicasOf(d)
				want := appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
				if d.Status.ObservedGeneration == want.ObservedGeneration && d.Status.Replicas == n && d.Status.AvailableReplicas == n {
					continue
				}
				d.Status = want
				_ = c.Status().Update(ctx, d)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (e *env) solution(t *testing.T, manifest string, mutate func(*spec.Manifest)) *v1alpha1.Solution {
	t.Helper()
	m, err := spec.Parse("aim.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(m)
	}
	sol := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: e.ns},
		Spec:       v1alpha1.FromManifest(m, nil),
	}
	if err := e.c.Create(context.Background(), sol); err != nil {
		t.Fatalf("creating solution %s: %v", m.Name, err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), sol) })
	return sol
}

// update changes a solution's spec, as its owner would: on the latest
// version, again if the operator wrote its status meanwhile.
func (e *env) update(t *testing.T, name string, change func(*v1alpha1.Solution)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := e.get(name)
		if err != nil {
			return err
		}
		change(s)
		return e.c.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatalf("updating %s: %v", name, err)
	}
}

// eventually retries f until it returns nil or the time is up.
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) get(name string) (*v1alpha1.Solution, error) {
	var s v1alpha1.Solution
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, &s)
	return &s, err
}

// waitState waits for the solution's status.state and returns the solution.
func (e *env) waitState(t *testing.T, name, state string, timeout time.Duration) *v1alpha1.Solution {
	t.Helper()
	var sol *v1alpha1.Solution
	eventually(t, name+" "+state, timeout, func() error {
		s, err := e.get(name)
		if err != nil {
			return err
		}
		sol = s
		if s.Status.State != state {
			return fmt.Errorf("state %q, conditions %+v", s.Status.State, s.Status.Conditions)
		}
		return nil
	})
	return sol
}

func (e *env) deployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: name}, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

// scale sets replicas through the scale subresource, as the gateway does
// to wake a solution.
func (e *env) scale(t *testing.T, name string, n int32) {
	t.Helper()
	d := e.deployment(t, name)
	s := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n}}
	if err := e.gateway.SubResource("scale").Update(context.Background(), d, client.WithSubResourceBody(s), client.FieldOwner("aim-gateway")); err != nil {
		t.Fatalf("scaling %s to %d: %v", name, n, err)
	}
}

// testSchema: what the CRD's schema refuses, the API server refuses.
func (e *env) testSchema(t *testing.T) {
	ctx := context.Background()
	web := v1alpha1.Component{Name: "web", Image: "web:1"}
	for _, tc := range []struct {
		name string
		sol  v1alpha1.Solution
		want string
	}{
		{"name not a DNS label", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "shop.v2"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}}},
			"metadata.name must be a DNS label"},
		{"no components", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "empty"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{}}},
			"spec.components: Invalid value: 0: spec.components in body should have at least 1 items"},
		{"duplicate component", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "dup"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web, web}}},
			`spec.components[1]: Duplicate value: map[string]interface {}{"name":"web"}`},
		{"component name", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "upper"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "Web", Image: "w:1"}}}},
			`spec.components[0].name: Invalid value: "Web": spec.components[0].name in body should match`},
		{"env name", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "env"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: "w:1", Env: map[string]string{"A-B": "1"}}}}},
			"spec.components[0].env: Invalid value: \"object\": env names are letters, digits and '_', not starting with a digit"},
		{"min above max", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "minmax"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Scaling: v1alpha1.Scaling{Min: 3, Max: 2}}},
			"spec.scaling.min: Invalid value: \"object\": min is above max"},
		{"unknown visibility", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "secret"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Visibility: "secret"}},
			`spec.visibility: Unsupported value: "secret": supported values: "public", "unlisted", "private"`},
		{"private without access", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "noaccess"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Visibility: "private"}},
			"spec.access: Invalid value: \"object\": a private solution needs an access list"},
		{"private with an empty access list", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "emptyaccess"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Visibility: "private", Access: &v1alpha1.Access{Emails: []string{}}}},
			"spec.access: Invalid value: 0: spec.access in body should have at least 1 properties"},
		{"access on an unlisted solution", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "unlisted"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Visibility: "unlisted", Access: &v1alpha1.Access{Groups: []string{"beta"}}}},
			"spec.access: Invalid value: \"object\": only a private solution has an access list"},
		{"unknown egress", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "egress"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Egress: "open"}},
			`spec.egress: Unsupported value: "open": supported values: "default", "none"`},
		{"unknown phase", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "phase"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Phases: []string{"marketing"}}},
			`spec.phases[0]: Unsupported value: "marketing"`},
		{"owner not a DNS label", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "owner"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web}, Owner: "Acme"}},
			`spec.owner: Invalid value: "Acme": spec.owner in body should match`},
		{"a private solution of a provider is accepted", v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "private"}, Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{web},
			Owner: "acme", Visibility: "private", Access: &v1alpha1.Access{Emails: []string{"ada@example.com"}}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.sol
			s.Namespace = e.ns
			err := e.c.Create(ctx, &s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				_ = e.c.Delete(ctx, &s)
				return
			}
			if err == nil {
				_ = e.c.Delete(ctx, &s)
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant an Invalid error containing %q", err, tc.want)
			}
		})
	}
}

// testInvalidSpec: what only internal/spec's rules catch fails the
// solution, with the field's path.
func (e *env) testInvalidSpec(t *testing.T) {
	yes := true
	sol := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: "two-roots", Namespace: e.ns},
		Spec: v1alpha1.SolutionSpec{Components: []v1alpha1.Component{
			{Name: "web", Image: "web:1", Public: &yes},
			{Name: "api", Image: "api:1", Public: &yes},
		}, NodeGroup: "general"},
	}
	if err := e.c.Create(context.Background(), sol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), sol) })
	s := e.waitState(t, sol.Name, v1alpha1.StateFailed, 10*time.Second)
	f := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionFailed)
	want := `spec.components[1].paths: a public component other than the first must name its path prefixes, e.g. [/api]`
	if f.Reason != ReasonInvalidSpec || f.Message != want {
		t.Errorf("Failed: %s %q\nwant %s %q", f.Reason, f.Message, ReasonInvalidSpec, want)
	}

	// A node group the cluster does not have.
	ng := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: "no-such-group", Namespace: e.ns},
		Spec:       v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: "web:1"}}, NodeGroup: "tpu"},
	}
	if err := e.c.Create(context.Background(), ng); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), ng) })
	s = e.waitState(t, ng.Name, v1alpha1.StateFailed, 10*time.Second)
	f = meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionFailed)
	if want := `spec.nodeGroup: "tpu" is not one of the cluster's node groups: general, solutions, gpu`; f.Message != want {
		t.Errorf("Failed: %q, want %q", f.Message, want)
	}
	var l appsv1.DeploymentList
	if err := e.c.List(context.Background(), &l, client.InNamespace(e.ns), client.MatchingLabels{v1alpha1.LabelSolution: ng.Name}); err != nil || len(l.Items) != 0 {
		t.Errorf("an invalid solution got deployments: %d, %v", len(l.Items), err)
	}
}

// testServe: the three-component solution's objects, its status, an
// update that keeps the replicas the gateway set, and a removed component.
func (e *env) testServe(t *testing.T) {
	ctx := context.Background()
	sol := e.solution(t, threeComponents, func(m *spec.Manifest) { m.Scaling.Max = 3; m.NodeGroup = "solutions" })
	s := e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	if s.Status.URL != "https://part-comparer.aim.example" || s.Status.Replicas != 3 {
		t.Errorf("status: url %q, replicas %d", s.Status.URL, s.Status.Replicas)
	}

	ips := map[string]string{}
	for _, c := range []string{"web", "api", "engine"} {
		var svc corev1.Service
		if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "part-comparer-" + c}, &svc); err != nil {
			t.Fatal(err)
		}
		if ref := metav1.GetControllerOf(&svc); ref == nil || ref.UID != s.UID {
			t.Errorf("service %s is not controlled by the solution: %+v", svc.Name, ref)
		}
		ips[c] = svc.Spec.ClusterIP
	}
	d := e.deployment(t, "part-comparer-engine")
	if ref := metav1.GetControllerOf(d); ref == nil || ref.UID != s.UID {
		t.Errorf("deployment %s is not controlled by the solution: %+v", d.Name, ref)
	}
	if replicasOf(d) != 1 {
		t.Errorf("created with %d replicas, want 1", replicasOf(d))
	}
	var hosts []string
	for _, h := range d.Spec.Template.Spec.HostAliases {
		hosts = append(hosts, h.Hostnames[0]+"="+h.IP)
	}
	if want := fmt.Sprintf("web=%s api=%s engine=%s", ips["web"], ips["api"], ips["engine"]); strings.Join(hosts, " ") != want {
		t.Errorf("host aliases %v, want %s", hosts, want)
	}
	if d.Spec.Template.Spec.NodeSelector[v1alpha1.LabelNodeGroup] != "solutions" {
		t.Errorf("node selector %v", d.Spec.Template.Spec.NodeSelector)
	}
	var nps networkingv1.NetworkPolicyList
	if err := e.c.List(ctx, &nps, client.InNamespace(e.ns), client.MatchingLabels{v1alpha1.LabelSolution: sol.Name}); err != nil || len(nps.Items) != 3 {
		t.Errorf("network policies: %d, %v", len(nps.Items), err)
	}

	// The gateway scales api to 2 (within max 3); an update of the spec
	// changes the template and leaves the replicas alone.
	e.scale(t, "part-comparer-api", 2)
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Components[1].Env["LOG_LEVEL"] = "debug" })
	eventually(t, "the template has the new env", 10*time.Second, func() error {
		d := e.deployment(t, "part-comparer-api")
		for _, v := range d.Spec.Template.Spec.Containers[0].Env {
			if v.Name == "LOG_LEVEL" && v.Value == "debug" {
				return nil
			}
		}
		return errors.New("not yet")
	})
	// Two more passes of the reconciler (the update, then the status
	// written) must not have reset it either.
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 10*time.Second)
	time.Sleep(time.Second)
	if n := replicasOf(e.deployment(t, "part-comparer-api")); n != 2 {
		t.Errorf("after an update api has %d replicas, want the 2 the gateway set", n)
	}
	if n := replicasOf(e.deployment(t, "part-comparer-web")); n != 1 {
		t.Errorf("web has %d replicas, want 1", n)
	}

	// The engine goes: its Deployment and Service go with it.
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Components = s.Spec.Components[:2] })
	eventually(t, "the engine's objects are deleted", 10*time.Second, func() error {
		for _, o := range []client.Object{&appsv1.Deployment{}, &corev1.Service{}} {
			err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "part-comparer-engine"}, o)
			if !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T: %v", o, err)
			}
		}
		return nil
	})
}

// testEgress: egress none has no internet policy; a change to default
// adds it, with the operator's deny list, and a change back removes it
// (unlike Docker's networks, no redeploy is needed).
func (e *env) testEgress(t *testing.T) {
	ctx := context.Background()
	sol := e.solution(t, oneComponent, func(m *spec.Manifest) { m.Name = "sealed"; m.Egress = spec.EgressNone })
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	policies := func() (string, error) {
		var nps networkingv1.NetworkPolicyList
		if err := e.c.List(ctx, &nps, client.InNamespace(e.ns), client.MatchingLabels{v1alpha1.LabelSolution: sol.Name}); err != nil {
			return "", err
		}
		var names []string
		for _, np := range nps.Items {
			if np.DeletionTimestamp == nil {
				names = append(names, np.Name)
			}
		}
		slices.Sort(names)
		return strings.Join(names, " "), nil
	}
	want := func(names string) func() error {
		return func() error {
			got, err := policies()
			if err == nil && got != names {
				err = fmt.Errorf("policies %q, want %q", got, names)
			}
			return err
		}
	}
	eventually(t, "siblings and gateway only", 10*time.Second, want("sealed.gateway sealed.siblings"))
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Egress = "default" })
	eventually(t, "the internet policy is added", 10*time.Second, want("sealed.gateway sealed.internet sealed.siblings"))
	var np networkingv1.NetworkPolicy
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "sealed.internet"}, &np); err != nil {
		t.Fatal(err)
	}
	if eg := np.Spec.Egress; len(eg) != 1 || len(eg[0].To) != 1 || eg[0].To[0].IPBlock == nil ||
		!slices.Contains(eg[0].To[0].IPBlock.Except, "169.254.0.0/16") || !slices.Contains(eg[0].To[0].IPBlock.Except, clusterEgressDeny) {
		t.Errorf("the internet policy's egress: %+v", eg)
	}
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Egress = "none" })
	eventually(t, "the internet policy is removed", 10*time.Second, want("sealed.gateway sealed.siblings"))
}

// testSleepAndWake: an idle solution is scaled to zero; the gateway's
// scale-up wakes it.
func (e *env) testSleepAndWake(t *testing.T) {
	sol := e.solution(t, threeComponents, func(m *spec.Manifest) {
		m.Name = "sleepy"
		m.Scaling.Idle = spec.Duration(2 * time.Second)
	})
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	start := time.Now()
	s := e.waitState(t, sol.Name, v1alpha1.StateSleeping, 15*time.Second)
	t.Logf("asleep %s after running", time.Since(start).Round(100*time.Millisecond))
	for _, c := range []string{"web", "api", "engine"} {
		if n := replicasOf(e.deployment(t, "sleepy-"+c)); n != 0 {
			t.Errorf("%s has %d replicas asleep", c, n)
		}
	}
	if r := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); r.Reason != ReasonSleeping {
		t.Errorf("Ready reason %s while asleep", r.Reason)
	}
	eventually(t, "an Idle event on the solution", 5*time.Second, func() error {
		var l eventsv1.EventList
		if err := e.c.List(context.Background(), &l, client.InNamespace(e.ns)); err != nil {
			return err
		}
		for _, ev := range l.Items {
			if ev.Regarding.Name == sol.Name && ev.Reason == ReasonIdle {
				return nil
			}
		}
		return fmt.Errorf("%d events, none Idle for %s", len(l.Items), sol.Name)
	})

	// A component added while it sleeps is created asleep, and stays so
	// through the operator's later applies, which leave replicas out.
	e.update(t, sol.Name, func(s *v1alpha1.Solution) {
		s.Spec.Components = append(s.Spec.Components, v1alpha1.Component{Name: "extra", Image: "extra:1"})
	})
	eventually(t, "the extra component's deployment", 10*time.Second, func() error {
		var d appsv1.Deployment
		return e.c.Get(context.Background(), types.NamespacedName{Namespace: e.ns, Name: "sleepy-extra"}, &d)
	})
	time.Sleep(2 * time.Second) // several reconciles: the Deployment's status changes, the solution's
	d := e.deployment(t, "sleepy-extra")
	if n := replicasOf(d); n != 0 {
		t.Errorf("a component added while asleep has %d replicas", n)
	}
	owners := map[string]bool{}
	for _, f := range d.ManagedFields {
		if f.FieldsV1 != nil && strings.Contains(string(f.FieldsV1.Raw), `"f:replicas"`) && f.Subresource == "" {
			owners[f.Manager] = true
		}
	}
	if !owners[replicasManager] {
		t.Errorf("spec.replicas is not owned by %s: %v", replicasManager, owners)
	}
	if s, _ := e.get(sol.Name); s.Status.State != v1alpha1.StateSleeping {
		t.Errorf("state %s after a component was added asleep", s.Status.State)
	}

	// The gateway wakes it: every component to max(min,1) = 1.
	for _, c := range []string{"web", "api", "engine", "extra"} {
		e.scale(t, "sleepy-"+c, 1)
	}
	s = e.waitState(t, sol.Name, v1alpha1.StateRunning, 10*time.Second)
	if meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionSleeping) {
		t.Error("still Sleeping once running")
	}
	// Woken, it gets a whole idle period again before it sleeps.
	s = e.waitState(t, sol.Name, v1alpha1.StateSleeping, 15*time.Second)

	// A half-done wake (only web scaled) is completed by the operator.
	e.scale(t, "sleepy-web", 1)
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 10*time.Second)
	for _, c := range []string{"web", "api", "engine", "extra"} {
		if n := replicasOf(e.deployment(t, "sleepy-"+c)); n != 1 {
			t.Errorf("%s has %d replicas after a partial wake, want 1", c, n)
		}
	}

	// Asleep again, it is woken when scaling.min becomes 2: it may no
	// longer sleep.
	e.waitState(t, sol.Name, v1alpha1.StateSleeping, 15*time.Second)
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Scaling.Min = 2; s.Spec.Scaling.Max = 2 })
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 10*time.Second)
	if n := replicasOf(e.deployment(t, "sleepy-engine")); n != 2 {
		t.Errorf("engine has %d replicas with min 2", n)
	}
}

// testActivity: the gateway's last-active annotation keeps a solution
// awake past its idle timeout.
func (e *env) testActivity(t *testing.T) {
	ctx := context.Background()
	sol := e.solution(t, oneComponent, func(m *spec.Manifest) {
		m.Name = "busy"
		m.Scaling.Idle = spec.Duration(3 * time.Second)
	})
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	start := time.Now()
	for time.Since(start) < 6*time.Second {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationLastActive, time.Now().UTC().Format(time.RFC3339Nano))
		s := &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: sol.Name, Namespace: e.ns}}
		if err := e.gateway.Patch(ctx, s, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
		if s, _ := e.get(sol.Name); s.Status.State != v1alpha1.StateRunning {
			t.Fatalf("state %s %s after start while active", s.Status.State, time.Since(start))
		}
		time.Sleep(500 * time.Millisecond)
	}
	e.waitState(t, sol.Name, v1alpha1.StateSleeping, 10*time.Second)
	t.Logf("asleep %s after the last activity", time.Since(start.Add(6*time.Second)).Round(100*time.Millisecond))
}

// testNameConflict: solution "a-b" component "c" and solution "a"
// component "b-c" would share the Deployment a-b-c.
func (e *env) testNameConflict(t *testing.T) {
	first := e.solution(t, "name: a-b\ncomponents:\n  - name: c\n    image: c:1\n", nil)
	e.waitState(t, first.Name, v1alpha1.StateRunning, 20*time.Second)
	second := e.solution(t, "name: a\ncomponents:\n  - name: b-c\n    image: c:1\n", nil)
	s := e.waitState(t, second.Name, v1alpha1.StateFailed, 10*time.Second)
	f := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionFailed)
	if want := "service a-b-c already exists and is controlled by Solution a-b; rename the solution or its component"; f.Reason != ReasonNameConflict || f.Message != want {
		t.Errorf("Failed: %s %q, want %s %q", f.Reason, f.Message, ReasonNameConflict, want)
	}
	if ref := metav1.GetControllerOf(e.deployment(t, "a-b-c")); ref == nil || ref.UID != first.UID {
		t.Errorf("the first solution lost its deployment: %+v", ref)
	}
}

// testNoOpApply: a reconcile that finds every object as the operator
// would apply it sends no apply. Before, each reconcile sent every object
// of the solution again (most are started by a Deployment's status), and
// bench/kube found the API server busy with applies that changed nothing.
func (e *env) testNoOpApply(t *testing.T) {
	ctx := context.Background()
	sol := e.solution(t, oneComponent, func(m *spec.Manifest) { m.Name = "unchanged" })
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	// Let the passes started by the objects' creation end.
	time.Sleep(time.Second)
	before, reconciles := e.applies.Load(), reconcileTotal(t)
	// A label someone else puts on the Deployment starts a reconcile; it
	// is not the operator's field, so nothing is to be applied.
	d := e.deployment(t, sol.Name+"-web")
	patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"example.com/touched":"yes"}}}`))
	if err := e.c.Patch(ctx, d, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reconcile", 10*time.Second, func() error {
		if reconcileTotal(t) <= reconciles {
			return errors.New("not yet")
		}
		return nil
	})
	if n := e.applies.Load() - before; n != 0 {
		t.Errorf("%d applies sent by a reconcile with nothing to change, want 0", n)
	}
	// A change of the spec is applied.
	e.update(t, sol.Name, func(s *v1alpha1.Solution) { s.Spec.Components[0].Env = map[string]string{"MODE": "test"} })
	eventually(t, "the change applied", 10*time.Second, func() error {
		for _, v := range e.deployment(t, sol.Name+"-web").Spec.Template.Spec.Containers[0].Env {
			if v.Name == "MODE" && v.Value == "test" {
				return nil
			}
		}
		return errors.New("not yet")
	})
}

// reconcileTotal is the reconciles the Solution controller has finished.
func reconcileTotal(t *testing.T) float64 {
	t.Helper()
	mfs, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "solution" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}
