//go:build cluster

// Package cluster holds the smoke check of the local test cluster that
// up.sh brings up. It needs that cluster, so it builds only with the
// "cluster" tag (smoke.sh runs it); plain `go test ./...` never sees it:
//
//	test/cluster/up.sh && test/cluster/smoke.sh
//
// It runs a FROM-scratch Go HTTP image built here by Docker and imported
// into the cluster, and proves that pods answer, reach one another by
// Service DNS names, that a NetworkPolicy refuses connections it does not
// allow, and how long a Deployment takes from zero replicas to an answer.
package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// smokeImage is tools/smokeserver in an image FROM scratch.
const smokeImage = "aim-cluster-smoke:test"

var (
	kubeconfigPath string
	kubectlBin     string
	api            *apiClient
	// Namespaces of this run: the server's, one allowed to reach it and one
	// that is not.
	nsServer, nsAllowed, nsOther string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	cleanup, err := setup()
	if err != nil {
		// No skip: a missing cluster fails the check.
		fmt.Fprintln(os.Stderr, "cluster smoke setup:", err)
		return 1
	}
	code := m.Run()
	cleanup()
	return code
}

func setup() (func(), error) {
	dir := os.Getenv("AIM_CLUSTER_DIR")
	if dir == "" {
		dir = "/tmp/aim-cluster"
	}
	kubeconfigPath = filepath.Join(dir, "kubeconfig")
	if _, err := os.Stat(kubeconfigPath); err != nil {
		return nil, fmt.Errorf("no cluster (%w); run test/cluster/up.sh", err)
	}
	if p, err := exec.LookPath("kubectl"); err == nil {
		kubectlBin = p
	} else {
		// build.sh builds one where Debian has none.
		home, _ := os.UserHomeDir()
		cache := os.Getenv("AIM_KUBE_CACHE")
		if cache == "" {
			cache = filepath.Join(home, ".cache/aim/kube")
		}
		kubectlBin = filepath.Join(cache, "kubernetes-v1.32.4/kubectl")
	}
	var err error
	if api, err = newAPIClient(kubeconfigPath); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := kubectl(ctx, "", "get", "--raw", "/readyz"); err != nil {
		return nil, fmt.Errorf("the cluster does not answer; run test/cluster/up.sh: %w", err)
	}
	if err := buildImage(ctx); err != nil {
		return nil, err
	}

	suffix := strconv.FormatInt(time.Now().Unix()%100000, 36)
	nsServer, nsAllowed, nsOther = "smoke-"+suffix+"-server", "smoke-"+suffix+"-allowed", "smoke-"+suffix+"-other"
	cleanup := func() {
		// Not waited for: namespaces take seconds to go, and the next run
		// uses new names.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := kubectl(ctx, "", "delete", "namespace", nsServer, nsAllowed, nsOther, "--wait=false"); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
		}
	}
	if _, err := kubectl(ctx, manifests(), "apply", "-f", "-"); err != nil {
		cleanup()
		return nil, err
	}
	for _, w := range [][]string{
		{"-n", nsServer, "rollout", "status", "deployment/web", "--timeout=120s"},
		{"-n", nsServer, "wait", "pod/client", "--for=condition=Ready", "--timeout=120s"},
		{"-n", nsAllowed, "wait", "pod/client", "--for=condition=Ready", "--timeout=120s"},
		{"-n", nsOther, "wait", "pod/client", "--for=condition=Ready", "--timeout=120s"},
	} {
		if _, err := kubectl(ctx, "", w...); err != nil {
			cleanup()
			return nil, err
		}
	}
	return cleanup, nil
}

// buildImage builds tools/smokeserver into an image FROM scratch with
// Docker's classic builder, and imports it into the cluster's containerd.
func buildImage(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "aim-cluster-smoke-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-C", "tools", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(dir, "smokeserver"), "./smokeserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building tools/smokeserver: %w\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY smokeserver /smokeserver\nUSER 65534:65534\nEXPOSE 8080\nENTRYPOINT [\"/smokeserver\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	docker := exec.CommandContext(ctx, "docker", "build", "-q", "-t", smokeImage, dir)
	docker.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := docker.CombinedOutput(); err != nil {
		return fmt.Errorf("docker build of %s: %w\n%s", smokeImage, err, out)
	}
	if out, err := exec.CommandContext(ctx, "./import-image.sh", smokeImage).CombinedOutput(); err != nil {
		return fmt.Errorf("importing %s: %w\n%s", smokeImage, err, out)
	}
	return nil
}

// manifests: in the server namespace, Deployment "web" (one replica) behind
// Service "web" (port 80), Deployment "wake" at zero replicas, and a client
// pod; a client pod in each of the two other namespaces. Every pod runs the
// smoke image; the clients serve too, but are used through `kubectl exec
// client -- /smokeserver get URL`.
func manifests() string {
	podSpec := `
      terminationGracePeriodSeconds: 2
      enableServiceLinks: false
      containers:
      - name: app
        image: ` + smokeImage + `
        imagePullPolicy: Never
        ports: [{containerPort: 8080}]
        securityContext:
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: {drop: [ALL]}`
	deployment := func(name string, replicas int, probe bool) string {
		s := fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  replicas: %[3]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata: {labels: {app: %[1]s}}
    spec:`, name, nsServer, replicas) + podSpec
		if probe {
			s += `
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}`
		}
		return s + "\n---"
	}
	client := func(ns string) string {
		return fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: %s, labels: {app: client}}
spec:`, ns) + strings.ReplaceAll(podSpec, "\n  ", "\n") + "\n---"
	}
	var b strings.Builder
	for _, ns := range []string{nsServer, nsAllowed, nsOther} {
		fmt.Fprintf(&b, "\napiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---", ns)
	}
	b.WriteString(deployment("web", 1, true))
	// No probe on "wake": its timing is to the first answer, not to Ready.
	b.WriteString(deployment("wake", 0, false))
	fmt.Fprintf(&b, `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %s}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---`, nsServer)
	for _, ns := range []string{nsServer, nsAllowed, nsOther} {
		b.WriteString(client(ns))
	}
	return b.String()
}

// get asks url from the client pod of ns; the error holds what the client
// printed (a refused or timed-out connection, an HTTP status).
func get(ctx context.Context, ns, url string) (string, error) {
	return kubectl(ctx, "", "-n", ns, "exec", "client", "--", "/smokeserver", "get", url)
}

func hostGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), nil
}

func TestPodAnswers(t *testing.T) {
	ip := strings.TrimSpace(mustKubectl(t, "", "-n", nsServer, "get", "pods", "-l", "app=web",
		"-o", "jsonpath={.items[0].status.podIP}"))
	clusterIP := strings.TrimSpace(mustKubectl(t, "", "-n", nsServer, "get", "service", "web",
		"-o", "jsonpath={.spec.clusterIP}"))
	for _, tc := range []struct{ name, url string }{
		{"pod IP from the host", "http://" + ip + ":8080/"},
		{"Service cluster IP from the host", "http://" + clusterIP + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body, err := hostGet(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(body, "hello from web-") {
				t.Fatalf("GET %s = %q, want the web pod's greeting", tc.url, body)
			}
		})
	}
}

func TestServiceDNS(t *testing.T) {
	for _, tc := range []struct{ name, from, url string }{
		{"short name, same namespace", nsServer, "http://web/"},
		{"full name, same namespace", nsServer, "http://web." + nsServer + ".svc.cluster.local/"},
		{"full name, other namespace", nsAllowed, "http://web." + nsServer + ".svc.cluster.local/"},
		{"service.namespace, other namespace", nsAllowed, "http://web." + nsServer + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			body, err := get(ctx, tc.from, tc.url)
			if err != nil {
				t.Fatalf("from %s: %v", tc.from, err)
			}
			if !strings.HasPrefix(body, "hello from web-") {
				t.Fatalf("from %s: GET %s = %q, want the web pod's greeting", tc.from, tc.url, body)
			}
		})
	}
}

func TestNetworkPolicy(t *testing.T) {
	svcURL := "http://web." + nsServer + ".svc.cluster.local/"
	podIP := strings.TrimSpace(mustKubectl(t, "", "-n", nsServer, "get", "pods", "-l", "app=web",
		"-o", "jsonpath={.items[0].status.podIP}"))
	podURL := "http://" + podIP + ":8080/"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Without a policy every namespace gets through: the refusal below is
	// the policy's doing, not a network that never worked.
	for _, ns := range []string{nsAllowed, nsOther} {
		if _, err := get(ctx, ns, svcURL); err != nil {
			t.Fatalf("before any NetworkPolicy, from %s: %v", ns, err)
		}
	}

	policy := fmt.Sprintf(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-allowed-only, namespace: %s}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: %s}}
`, nsServer, nsAllowed)
	mustKubectl(t, policy, "apply", "-f", "-")
	t.Cleanup(func() {
		mustKubectl(t, "", "-n", nsServer, "delete", "networkpolicy", "web-from-allowed-only", "--ignore-not-found")
	})
	applied := time.Now()

	// kube-router applies policies asynchronously: the first refusal may
	// take a moment.
	var refusal error
	for refusal == nil {
		if time.Since(applied) > 30*time.Second {
			t.Fatalf("30 s after the NetworkPolicy, %s still reaches %s", nsOther, svcURL)
		}
		_, refusal = get(ctx, nsOther, svcURL)
	}
	t.Logf("enforced %.1f s after apply: from %s: %v", time.Since(applied).Seconds(), nsOther, refusal)
	if strings.Contains(refusal.Error(), "no such host") {
		t.Fatalf("the name did not resolve, so the connection was never tried: %v", refusal)
	}
	for _, tc := range []struct {
		name, from, url string
		allowed         bool
	}{
		{"denied namespace, Service name", nsOther, svcURL, false},
		{"denied namespace, pod IP", nsOther, podURL, false},
		{"allowed namespace, Service name", nsAllowed, svcURL, true},
		{"allowed namespace, pod IP", nsAllowed, podURL, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := get(ctx, tc.from, tc.url)
			switch {
			case tc.allowed && err != nil:
				t.Fatalf("from %s: %v", tc.from, err)
			case tc.allowed && !strings.HasPrefix(body, "hello from web-"):
				t.Fatalf("from %s: GET %s = %q, want the web pod's greeting", tc.from, tc.url, body)
			case !tc.allowed && err == nil:
				t.Fatalf("from %s: GET %s answered %q; the policy should refuse the connection", tc.from, tc.url, body)
			case !tc.allowed:
				t.Logf("refused as it should be: %v", err)
			}
		})
	}
}

// TestScaleFromZero measures, as aim waking a solution on Kubernetes would
// see it, the time from the scale request (0 -> 1) to the pod's first HTTP
// answer.
func TestScaleFromZero(t *testing.T) {
	const rounds = 5
	// Far above the ~1 s this takes on an idle machine: it must hold on a
	// busy shared one too, yet catch a wake that hangs.
	const bound = 15 * time.Second
	var times []time.Duration
	for i := range rounds {
		d, err := wakeOnce(nsServer, "wake")
		if err != nil {
			t.Fatalf("round %d: %v", i+1, err)
		}
		t.Logf("round %d: scale 0->1 answered in %.3f s", i+1, d.Seconds())
		if d > bound {
			t.Errorf("round %d: %.3f s, more than %s", i+1, d.Seconds(), bound)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	t.Logf("scale 0->1 until the first answer, %d rounds: min %.3f s, median %.3f s, max %.3f s",
		rounds, times[0].Seconds(), times[rounds/2].Seconds(), times[rounds-1].Seconds())
}

func wakeOnce(ns, deploy string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	selector := "app=" + deploy
	// Start from nothing: the previous round's pod fully gone.
	for {
		list, err := api.listPods(ctx, ns, selector)
		if err != nil {
			return 0, err
		}
		n := len(list.Items)
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%d pod(s) of %s still there: %w", n, deploy, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	watch, err := api.watchPodIPs(ctx, ns, selector)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := api.scale(ctx, ns, deploy, 1); err != nil {
		return 0, err
	}
	defer func() {
		if err := api.scale(context.Background(), ns, deploy, 0); err != nil {
			fmt.Fprintln(os.Stderr, "scaling back to 0:", err)
		}
	}()
	var ip string
	select {
	case ip = <-watch.ips:
	case <-ctx.Done():
		return 0, fmt.Errorf("no pod of %s got an IP: %w", deploy, ctx.Err())
	}
	if ip == "" {
		return 0, fmt.Errorf("no pod of %s got an IP: %w", deploy, watch.err)
	}
	url := "http://" + ip + ":8080/"
	client := &http.Client{Timeout: 200 * time.Millisecond}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%s never answered: last error %v: %w", url, err, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
