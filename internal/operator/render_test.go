package operator

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The manifests the goldens render: a single component, and the
// part-comparer example's three (web and api public, engine private; api
// judged ready by its health path, the others by the default rule).
const (
	oneComponent = `
name: hello
components:
  - name: web
    image: registry.example/hello:1
`
	threeComponents = `
name: part-comparer
title: Part Comparer
components:
  - name: web
    image: registry.example/part-comparer-web:1
    public: true
    paths: ["/"]
    resources: {cpu: "0.25", memory: 64Mi}
  - name: api
    image: registry.example/part-comparer-api:1
    public: true
    paths: ["/api"]
    env: {ENGINE_URL: "http://engine:8080", LOG_LEVEL: info}
    resources: {cpu: "0.5", memory: 128Mi}
    ready: {path: /api/healthz}
  - name: engine
    image: registry.example/part-comparer-engine:1
    runAsRoot: true
    resources: {cpu: "1", memory: 256Mi, pids: 64}
scaling: {idle: 30m, min: 0, max: 1, concurrency: 20}
limits: {rps: 10, burst: 20, body: 10MiB}
`
	// withSecrets: chat takes a key from the solution's Secret, beside a
	// plain value; index takes none, and has no secrets hash to roll it.
	withSecrets = `
name: chat
components:
  - name: chat
    image: registry.example/chat:1
    public: true
    env: {MODEL: small, OPENAI_API_KEY: {secret: OPENAI_API_KEY}, HF_TOKEN: {secret: hf.token}}
  - name: index
    image: registry.example/index:1
`
	// A component that writes two directories and needs a GPU of one
	// model, beside one that needs neither.
	writableGPU = `
name: notebooks
components:
  - name: web
    image: registry.example/notebooks-web:1
    public: true
    writable: [/var/lib/nginx, {path: /home/app/.cache, size: 256Mi}]
    resources: {memory: 1Gi, gpu: 1, gpuType: NVIDIA-L4}
  - name: store
    image: registry.example/notebooks-store:1
`
	// allKinds: one component with everything a real provider's app may
	// ask for at once (issue 16's golden): writable paths, a volume, a
	// secret and a GPU.
	allKinds = `
name: notebook
components:
  - name: lab
    image: registry.example/lab:1
    public: true
    writable: [/home/app/.cache]
    volumes: [{name: work, path: /work, size: 5Gi}]
    env: {HF_HUB_CACHE: /home/app/.cache, HF_TOKEN: {secret: HF_TOKEN}}
    resources: {memory: 4Gi, gpu: 1}
`
	// volumeComponents: uploads written by web and read by a root worker,
	// and web's own cache.
	// privateImages: web's image comes from a registry the owner logged
	// in to (the API names the pull Secret and asks for a pull per pod),
	// cache's from a public one.
	privateImages = `
name: shop
components:
  - name: web
    image: registry.example.com:5000/acme/shop:1
    public: true
  - name: cache
    image: docker.io/library/redis:7
`
	volumeComponents = `
name: uploader
components:
  - name: web
    image: registry.example/uploader:1
    public: true
    volumes:
      - {name: uploads, path: /data, size: 2Gi}
      - {name: cache, path: /var/cache/app, size: 100Mi}
  - name: worker
    image: registry.example/uploader-worker:1
    runAsRoot: true
    volumes: [{name: uploads, path: /uploads, size: 2Gi, readOnly: true}]
`
)

func testOptions() Options {
	return Options{
		Domain:           "aim.example",
		GatewayNamespace: "aim-system",
		GatewayLabels:    map[string]string{"app.kubernetes.io/name": "aim", "app.kubernetes.io/component": "gateway"},
	}
}

// testSolution is the Solution an API would create for the manifest,
// with a fixed UID for the owner references.
func testSolution(t *testing.T, manifest, nodeGroup string) (*v1alpha1.Solution, *spec.Manifest) {
	t.Helper()
	m, err := spec.Parse("aim.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	m.NodeGroup = nodeGroup
	sol := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: "solutions", UID: "6a1c9f0e-0000-4000-8000-000000000001", Generation: 1},
		Spec:       v1alpha1.FromManifest(m, nil),
	}
	// The reconciler's path: the manifest comes back out of the spec.
	back, err := v1alpha1.ToManifest(sol.Name, sol.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return sol, back
}

func TestRenderGolden(t *testing.T) {
	for _, tc := range []struct {
		name      string
		manifest  string
		nodeGroup string
		mesh      bool
	}{
		{"one-component", oneComponent, "", false},
		{"one-component-node-group", oneComponent, "gpu", false},
		{"one-component-mesh", oneComponent, "", true},
		{"one-component-node-group-mesh", oneComponent, "gpu", true},
		{"three-components", threeComponents, "", false},
		{"three-components-node-group", threeComponents, "solutions", false},
		{"three-components-mesh", threeComponents, "", true},
		{"three-components-node-group-mesh", threeComponents, "solutions", true},
		{"secrets", withSecrets, "", false},
		{"writable-gpu", writableGPU, "", false},
		{"writable-gpu-node-group", writableGPU, "accelerated", false},
		{"volumes", volumeComponents, "", false},
		{"writable-volume-secret-gpu", allKinds, "", false},
		{"one-component-egress-none", oneComponent + "egress: none\n", "", false},
		{"three-components-egress-none-mesh", threeComponents + "egress: none\n", "", true},
		{"image-pull-secrets", privateImages, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol, m := testSolution(t, tc.manifest, tc.nodeGroup)
			if m.Name == "shop" {
				sol.Spec.ImagePullSecrets = []string{v1alpha1.PullSecretName("shop")}
				sol.Spec.Components[0].PullAlways = true
			}
			if len(m.Secrets()) > 0 {
				sol.Spec.SecretVersions = map[string]string{"OPENAI_API_KEY": "2026-12-03T16:00:00Z", "hf.token": "2026-12-01T09:30:00Z"}
			}
			o := testOptions()
			if tc.name == "secrets" {
				// Images from the chart's registry, pulled with its Secret.
				o.PullSecret = "aim-pull"
			}
			o.Mesh = tc.mesh
			if tc.nodeGroup != "" {
				// A cluster whose node addresses, say, are public, with
				// a node-local DNS cache.
				o.EgressDeny = []string{"192.0.2.0/24", "198.51.100.7/32"}
				o.DNSCIDRs = []string{"169.254.20.10/32"}
			}
			ips := map[string]string{}
			for i, c := range m.Components {
				ips[c.Name] = fmt.Sprintf("10.96.0.%d", 10*(i+1))
			}
			got := renderYAML(t, Render(sol, m, o, ips, initialReplicas(m, false)))
			golden(t, filepath.Join("testdata", tc.name+".yaml"), got)
		})
	}
}

// TestSecretsHashRolls: setting a secret again changes the hash on the
// pod template of the components that use it, and only theirs.
func TestSecretsHashRolls(t *testing.T) {
	sol, m := testSolution(t, withSecrets, "")
	sol.Spec.SecretVersions = map[string]string{"OPENAI_API_KEY": "1", "hf.token": "1"}
	before := secretsHash(sol, m.Components[0])
	sol.Spec.SecretVersions["OPENAI_API_KEY"] = "2"
	if after := secretsHash(sol, m.Components[0]); after == before || after == "" {
		t.Errorf("the hash of chat did not change: %q, %q", before, after)
	}
	if h := secretsHash(sol, m.Components[1]); h != "" {
		t.Errorf("index uses no secret, and has hash %q", h)
	}
}

// TestDefaultNodeGroup: a solution naming no group gets the operator's.
func TestDefaultNodeGroup(t *testing.T) {
	sol, m := testSolution(t, oneComponent, "")
	o := testOptions()
	o.DefaultNodeGroup = "solutions"
	d := renderDeployment(sol, m, m.Components[0], o.withDefaults(), nil)
	if got := d.Spec.Template.Spec.NodeSelector[v1alpha1.LabelNodeGroup]; got != "solutions" {
		t.Errorf("node selector %q, want solutions", got)
	}
	m.NodeGroup = "gpu"
	d = renderDeployment(sol, m, m.Components[0], o.withDefaults(), nil)
	if got := d.Spec.Template.Spec.NodeSelector[v1alpha1.LabelNodeGroup]; got != "gpu" {
		t.Errorf("node selector %q, want the solution's gpu", got)
	}
}

func TestObjectName(t *testing.T) {
	for _, tc := range []struct {
		name, sol, comp, want string
	}{
		{"plain", "shop", "web", "shop-web"},
		{"starts with a digit", "3d-viewer", "web", "aim-3d-viewer-web-915e276d"},
		{"too long", strings.Repeat("a", 60), "engine", "aim-" + strings.Repeat("a", 50) + "-710ab022"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := objectName(tc.sol, tc.comp)
			if got != tc.want {
				t.Errorf("objectName(%q, %q) = %q, want %q", tc.sol, tc.comp, got, tc.want)
			}
			if len(got) > 63 {
				t.Errorf("%q has %d characters; a Service name has at most 63", got, len(got))
			}
		})
	}
}

func renderYAML(t *testing.T, objs []runtime.ApplyConfiguration) string {
	t.Helper()
	var b strings.Builder
	for _, o := range objs {
		y, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.String()
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n%s", path, diff(string(want), got))
	}
}

// diff shows the first lines that differ, enough to see what changed.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return "(same lines, different endings)"
}

// TestGPUNodeGroup: a GPU component runs on the node group gpu unless its
// solution names one, and fails where the cluster has no such group.
func TestGPUNodeGroup(t *testing.T) {
	sol, m := testSolution(t, writableGPU, "")
	o := testOptions()
	o.DefaultNodeGroup = "general"
	for _, c := range m.Components {
		want := map[string]string{"web": "gpu", "store": "general"}[c.Name]
		if got := componentNodeGroup(m, c, o); got != want {
			t.Errorf("component %s runs on %q, want %q", c.Name, got, want)
		}
	}
	r := &Reconciler{opts: Options{NodeGroups: []string{"general", "solutions"}}}
	_, err := r.manifest(sol)
	want := "spec.components[0].resources.gpu: a GPU component runs on the node group gpu, which the cluster does not have (its groups: general, solutions): name the group with GPUs in nodeGroup"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	r.opts.NodeGroups = append(r.opts.NodeGroups, "gpu")
	if _, err := r.manifest(sol); err != nil {
		t.Errorf("with a gpu group: %v", err)
	}
}
