//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
)

// The tests run in this file's order: deploys first, then requests,
// isolation, sleep and wake, the gateway's own resilience, and removal.

// exampleDir copies an example into a new directory, its build
// directories and their build: lines as they are (the cluster builds
// them), with the idle timeout shortened, the rate limit raised (the
// waking test sends 200 requests from one client address at once) and the
// CPU lowered to fit a two-core node.
func exampleDir(t *testing.T, example string) string {
	t.Helper()
	// Not t.TempDir(): the builds' tests redeploy variants of it.
	root, err := os.MkdirTemp("", "aim-e2e-kube-"+example+"-")
	if err != nil {
		t.Fatal(err)
	}
	exampleDirs = append(exampleDirs, root)
	dir := filepath.Join(root, example)
	if _, err := sh(repo, nil, "cp", "-r", filepath.Join(repo, "examples", example), dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "aim.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = regexp.MustCompile(`idle: \S+?([,}])`).ReplaceAllString(s, "idle: "+idle.String()+"$1")
	s = regexp.MustCompile(`(?m)^limits: .*$`).ReplaceAllString(s, "limits: {rps: 10000, burst: 10000}")
	// The node has two cores, shared by every pod of the run.
	s = regexp.MustCompile(`cpu: "[^"]*"`).ReplaceAllString(s, `cpu: "250m"`)
	if !strings.Contains(s, "build:") || !strings.Contains(s, "idle: "+idle.String()) {
		t.Fatalf("could not rewrite %s/aim.yaml for the cluster:\n%s", example, s)
	}
	if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// exampleDirs are removed by teardown.
var exampleDirs []string

// builtImages are the images aim deploy's output says it built, by
// component, and how long each build took.
func builtImages(out string) map[string]string {
	re := regexp.MustCompile(`(?m)^(\S+) \| built (` + regexp.QuoteMeta(registryHost) + `/\S+@sha256:[0-9a-f]{64}) in (\S+)$`)
	got := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		got[m[1]] = m[2] + " " + m[3]
	}
	return got
}

func solution(ctx context.Context, name string) (*v1alpha1.Solution, error) {
	sol := &v1alpha1.Solution{}
	err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sol)
	return sol, err
}

func waitState(t *testing.T, name, state string, d time.Duration) {
	t.Helper()
	err := waitFor(d, 200*time.Millisecond, name+" "+state, func() (bool, error) {
		sol, err := solution(context.Background(), name)
		if err != nil {
			return false, err
		}
		return sol.Status.State == state, fmt.Errorf("state %q", sol.Status.State)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeployPartComparer(t *testing.T) {
	partComparerDir = exampleDir(t, "part-comparer")
	start := time.Now()
	out, err := aim("deploy", partComparerDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("aim deploy took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	// Built in the cluster, pushed to its registry, pulled by digest.
	built := builtImages(out)
	for _, c := range []string{"web", "api", "engine"} {
		if built[c] == "" {
			t.Errorf("aim deploy did not say it built %s in the cluster", c)
		}
		// Uncached on a fresh registry; from its cache on a kept cluster.
		t.Logf("build of %s: %s", c, built[c])
	}
	sol, err := solution(context.Background(), "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sol.Spec.Components {
		if !strings.HasPrefix(c.Image, registryHost+"/aim/part-comparer/"+c.Name+"@sha256:") {
			t.Errorf("component %s runs %s, not an image of the registry by digest", c.Name, c.Image)
		}
	}
	if !strings.Contains(out, "http://part-comparer."+domain+"/") {
		t.Errorf("aim deploy printed no URL at %s:\n%s", domain, out)
	}
	for _, c := range []string{"web | ", "api | ", "engine | "} {
		if !strings.Contains(out, c) {
			t.Errorf("no progress of component %q:\n%s", strings.TrimSuffix(c, " | "), out)
		}
	}
	ls, err := aim("ls")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`part-comparer\s+ready\s+http://part-comparer\.` + domain).MatchString(ls) {
		t.Errorf("aim ls does not show part-comparer ready:\n%s", ls)
	}
	st, err := aim("status", "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`State:\s+ready`, `web\s+/\s+1/1`, `api\s+/api\s+1/1`, `engine\s+no\s+1/1`} {
		if !regexp.MustCompile(re).MatchString(st) {
			t.Errorf("aim status does not match %s:\n%s", re, st)
		}
	}
	logs, err := aim("logs", "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^web \| .*web: listening`, `(?m)^api \| .*api: listening`, `(?m)^engine \| .*engine: .*listening`} {
		if !regexp.MustCompile(re).MatchString(logs) {
			t.Errorf("aim logs does not match %s:\n%s", re, logs)
		}
	}
	one, err := aim("logs", "part-comparer", "api", "--tail", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(one, "api: listening") || strings.Contains(one, " | ") {
		t.Errorf("aim logs part-comparer api: want the api's lines unprefixed:\n%s", one)
	}
}

func TestDeployTextEmbedding(t *testing.T) {
	if !textEmbedding {
		t.Fatal("the text-embedding image could not be built (see the setup log)")
	}
	out, err := aim("deploy", exampleDir(t, "text-embedding"))
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
	if b := builtImages(out)["api"]; b == "" {
		t.Error("aim deploy did not say it built text-embedding's api in the cluster")
	}
}

// hello is a Solution written by hand and applied with kubectl: the test
// server, awake for the whole run.
const helloYAML = `apiVersion: aim.dev/v1alpha1
kind: Solution
metadata:
  name: hello
  namespace: ` + ns + `
spec:
  title: Hello
  components:
    - name: web
      image: %s
      resources: {cpu: 250m, memory: 64Mi}
  scaling:
    idle: 1h
  limits:
    rps: "10000"
    burst: 10000
`

func TestKubectlApply(t *testing.T) {
	f := filepath.Join(t.TempDir(), "hello.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(helloYAML, images["testserver"])), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := kubectl("apply", "-f", f); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	waitState(t, "hello", v1alpha1.StateRunning, 2*time.Minute)
}

func TestAnswersThroughGateway(t *testing.T) {
	type check struct {
		sol, path, want string
	}
	checks := []check{
		{"part-comparer", "/", "text/html"},
		{"part-comparer", "/api/healthz", ""},
		// The api asks the engine, its private sibling, at http://engine:8080.
		{"part-comparer", "/api/parts", "application/json"},
		{"hello", "/", "text/html"},
	}
	if textEmbedding {
		checks = append(checks, check{"text-embedding", "/", "text/html"})
	}
	for _, c := range checks {
		t.Run(c.sol+c.path, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			// A short idle timeout may have put it to sleep already; the
			// request wakes it.
			code, body, h, err := get(ctx, c.sol, c.path)
			if err != nil {
				t.Fatal(err)
			}
			if code != http.StatusOK {
				t.Fatalf("GET %s%s: %d %s", c.sol, c.path, code, body)
			}
			if ct := h.Get("Content-Type"); !strings.Contains(ct, c.want) {
				t.Errorf("GET %s%s: Content-Type %q, want %q", c.sol, c.path, ct, c.want)
			}
		})
	}
	t.Run("the apex serves the catalog and the API", func(t *testing.T) {
		for path, want := range map[string]string{"/": "Hello", "/api/v1/solutions": `"name": "hello"`, "/healthz": "ok"} {
			req, err := http.NewRequest(http.MethodGet, gatewayURL+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = domain
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
				t.Errorf("GET %s%s: %d, want 200 with %q:\n%.300s", domain, path, resp.StatusCode, want, b)
			}
		}
		// The CLI, pointed at the gateway (by its address: the apex too).
		out, err := sh(repo, []string{"AIM_SERVER=" + gatewayURL, "AIM_TOKEN=" + token, "XDG_CONFIG_HOME=" + os.TempDir()}, aimBin, "ls")
		if err != nil || !strings.Contains(out, "hello") {
			t.Errorf("aim ls through the gateway: %v\n%s", err, out)
		}
	})
	t.Run("unknown solution", func(t *testing.T) {
		code, body, _, err := get(context.Background(), "nosuch", "/")
		if err != nil {
			t.Fatal(err)
		}
		if code != http.StatusNotFound {
			t.Errorf("GET nosuch: %d %s, want 404", code, body)
		}
	})
}

func TestKubectlGetSolutions(t *testing.T) {
	out, err := kubectl("get", "solutions", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out)
	for _, re := range []string{`NAME\s+STATE\s+URL`, `hello\s+running\s+http://hello\.` + domain, `part-comparer\s+(running|sleeping)\s+http://part-comparer\.` + domain} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("kubectl get solutions does not match %s", re)
		}
	}
}

// TestSleepAndWakeThroughAPI puts hello to sleep and wakes it with the CLI
// through the in-cluster API, whose service account scales the
// Deployments (regression: the chart's API Role lacked deployments and
// deployments/scale, and both answered 500). hello runs again afterwards.
func TestSleepAndWakeThroughAPI(t *testing.T) {
	ctx := context.Background()
	out, err := aim("sleep", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "hello is sleeping") {
		t.Errorf("aim sleep hello: want \"hello is sleeping\":\n%s", out)
	}
	if err := waitFor(time.Minute, 250*time.Millisecond, "hello without pods", func() (bool, error) {
		n, err := allPodsOf(ctx, "hello")
		return err == nil && n == 0, fmt.Errorf("%d pods (%v)", n, err)
	}); err != nil {
		t.Error(err)
	}
	if st, err := aim("status", "hello"); err != nil || !regexp.MustCompile(`State:\s+sleeping`).MatchString(st) {
		t.Errorf("aim status hello after aim sleep: %v\n%s", err, st)
	}
	out, err = aim("wake", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "hello is ready") {
		t.Errorf("aim wake hello: want \"hello is ready\":\n%s", out)
	}
	if pods, err := podsOf(ctx, "hello", ""); err != nil || len(pods) != 1 {
		t.Errorf("after aim wake, hello has %d pods (%v), want 1", len(pods), err)
	}
	code, body, _, err := get(ctx, "hello", "/")
	if err != nil || code != http.StatusOK {
		t.Errorf("GET hello after aim wake: %d %v %.200s", code, err, body)
	}
	// A solution aim does not have is 404 for both, not a cluster error.
	for _, action := range []string{"sleep", "wake"} {
		if out, err := aim(action, "nosuch"); err == nil || !strings.Contains(out, "not found") {
			t.Errorf("aim %s nosuch: want a not-found error: %v\n%s", action, err, out)
		}
	}
}

// awake wakes a solution through the gateway and returns a pod of one of
// its components.
func awake(t *testing.T, sol, comp string) corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if code, body, _, err := get(ctx, sol, "/"); err != nil || code != http.StatusOK {
		t.Fatalf("waking %s: %d %s %v", sol, code, body, err)
	}
	var pod corev1.Pod
	err := waitFor(time.Minute, 200*time.Millisecond, sol+"/"+comp+" running with an IP", func() (bool, error) {
		pods, err := podsOf(ctx, sol, comp)
		if err != nil || len(pods) == 0 || pods[0].Status.PodIP == "" {
			return false, err
		}
		pod = pods[0]
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// keepAwake asks for sol's / through the gateway every two seconds until
// stopped, so that its short idle timeout does not put it to sleep while
// a test talks to its pods directly (which the gateway does not see).
func keepAwake(sol string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			_, _, _, _ = get(ctx, sol, "/")
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return func() { cancel(); <-done }
}

// runProbe runs the probe image in a pod with the given labels and says
// whether it got an answer from url, with what it printed.
func runProbe(t *testing.T, name string, labels map[string]string, url string) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	no, yes := false, true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{
				Name: "probe", Image: images["probe"], ImagePullPolicy: corev1.PullNever, Args: []string{url},
				SecurityContext: &corev1.SecurityContext{RunAsNonRoot: &yes, AllowPrivilegeEscalation: &no},
			}},
		},
	}
	_ = kc.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{})
	_ = waitFor(time.Minute, 200*time.Millisecond, "old probe pod gone", func() (bool, error) {
		_, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return err != nil, nil
	})
	if _, err := kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = kc.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{}) }()
	var exit int32 = -1
	err := waitFor(time.Minute, 200*time.Millisecond, "probe "+name+" done", func() (bool, error) {
		p, err := kc.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated != nil {
				exit = cs.State.Terminated.ExitCode
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := kubectl("logs", "-n", ns, name)
	return exit == 0, strings.TrimSpace(out)
}

// TestPrivateEngineUnreachable proves isolation by connection attempts:
// the gateway's pods reach the public web but not the private engine, a
// pod of the same solution reaches the engine, and a pod of another
// solution reaches neither.
func TestPrivateEngineUnreachable(t *testing.T) {
	stop := keepAwake("part-comparer")
	defer stop()
	engine := awake(t, "part-comparer", "engine")
	web := awake(t, "part-comparer", "web")
	engineURL := "http://" + engine.Status.PodIP + ":8080/healthz"
	webURL := "http://" + web.Status.PodIP + ":8080/"

	gw, err := kc.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil || len(gw.Items) == 0 {
		t.Fatalf("no gateway pod: %v", err)
	}
	gwLabels := map[string]string{}
	for k, v := range gw.Items[0].Labels {
		if k != "pod-template-hash" {
			gwLabels[k] = v
		}
	}
	cases := []struct {
		name   string
		labels map[string]string
		url    string
		want   bool
	}{
		{"gateway-to-web", gwLabels, webURL, true},
		{"gateway-to-engine", gwLabels, engineURL, false},
		{"sibling-to-engine", map[string]string{v1alpha1.LabelSolution: "part-comparer", v1alpha1.LabelComponent: "probe"}, engineURL, true},
		{"other-solution-to-engine", map[string]string{v1alpha1.LabelSolution: "hello", v1alpha1.LabelComponent: "probe"}, engineURL, false},
		{"other-solution-to-web", map[string]string{v1alpha1.LabelSolution: "hello", v1alpha1.LabelComponent: "probe"}, webURL, false},
		{"unlabelled-to-engine", map[string]string{"app": "e2e-probe"}, engineURL, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, out := runProbe(t, "probe-"+c.name, c.labels, c.url)
			t.Logf("%s: %s", c.url, out)
			if got != c.want {
				t.Errorf("connected: %v, want %v (%s)", got, c.want, out)
			}
		})
	}
	// The same from inside a running solution: hello's own container
	// dials the engine (the test server's /dial), through the gateway.
	code, body, _, err := get(context.Background(), "hello", "/dial?addr="+engine.Status.PodIP+":8080")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("hello dials the engine: %d %s", code, strings.TrimSpace(body))
	if code == http.StatusOK {
		t.Errorf("hello's pod connected to part-comparer's engine: %s", body)
	}
}

// waitAsleep waits until a solution has no pods and says it sleeps.
func waitAsleep(t *testing.T, sol string, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	err := waitFor(d, 250*time.Millisecond, sol+" scaled to 0", func() (bool, error) {
		n, err := allPodsOf(context.Background(), sol)
		if err != nil {
			return false, err
		}
		s, err := solution(context.Background(), sol)
		if err != nil {
			return false, err
		}
		return n == 0 && s.Status.State == v1alpha1.StateSleeping, fmt.Errorf("%d pods, state %q", n, s.Status.State)
	})
	if err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

func idleSolutions() []string {
	s := []string{"part-comparer"}
	if textEmbedding {
		s = append(s, "text-embedding")
	}
	return s
}

func TestIdleScalesToZero(t *testing.T) {
	for _, sol := range idleSolutions() {
		t.Run(sol, func(t *testing.T) {
			awake(t, sol, "")
			last := time.Now()
			took := waitAsleep(t, sol, idle+2*time.Minute)
			t.Logf("%s: 0 pods %s after its last request (scaling.idle %s)", sol, took.Round(time.Millisecond), idle)
			if since := time.Since(last); since < idle {
				t.Errorf("asleep %s after the last request, before its idle timeout of %s", since, idle)
			}
		})
	}
	// hello idles for an hour: it must still run.
	if pods, err := podsOf(context.Background(), "hello", ""); err != nil || len(pods) == 0 {
		t.Errorf("hello (scaling.idle 1h) was put to sleep too: %v", err)
	}
}

func TestWake200Concurrent(t *testing.T) {
	for _, sol := range idleSolutions() {
		t.Run(sol, func(t *testing.T) {
			waitAsleep(t, sol, idle+2*time.Minute)
			const n = 200
			codes := make([]int, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			gate := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					codes[i], _, _, errs[i] = get(ctx, sol, "/")
				}()
			}
			close(gate)
			wg.Wait()
			took := time.Since(start)
			failed := 0
			for i := range n {
				if errs[i] != nil || codes[i] != http.StatusOK {
					failed++
					if failed <= 5 {
						t.Errorf("request %d: %d %v", i, codes[i], errs[i])
					}
				}
			}
			t.Logf("%s: %d concurrent requests woke it; all answered in %s; %d failed", sol, n, took.Round(time.Millisecond), failed)
			// One wake: every component runs one replica.
			pods, err := podsOf(ctx, sol, "")
			if err != nil {
				t.Fatal(err)
			}
			sl, _ := solution(ctx, sol)
			if want := len(sl.Spec.Components); len(pods) != want {
				t.Errorf("%d pods after the wake, want %d (one per component)", len(pods), want)
			}
		})
	}
}
