//go:build kube

// Package e2ekube tests aim on a real Kubernetes cluster: the single-node
// cluster of test/cluster (brought up if none runs), aim's image and the
// examples' images built FROM scratch here and imported into it, the Helm
// chart of deploy/helm/aim installed with values for this cluster, and
// solutions deployed with `aim deploy` through the in-cluster API and with
// `kubectl apply`. Every check is a real request or a real connection
// attempt. It builds only with the "kube" tag:
//
//	make test-e2e-kube              # KEEP_CLUSTER=1 leaves the cluster up
//
// The cluster is torn down at the end only if this run brought it up and
// KEEP_CLUSTER is not 1; the release's namespace is removed unless
// KEEP_CLUSTER=1.
package e2ekube

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/internal/kube"
)

const (
	// ns holds the release and every solution of the run.
	ns      = "aim-e2e"
	release = "aim"
	domain  = "aim.test"
	// idle is the operator's --idle-timeout and the examples' scaling.idle
	// here: short, so that sleeping is seen within the test.
	idle = 10 * time.Second
)

var (
	repo        string // the repository's root
	clusterDir  string
	kubeconfig  string
	kubectlPath string
	aimBin      string // aim for this host: the CLI of the tests
	kc          *kubernetes.Clientset
	cl          client.Client
	// gatewayURL is the gateway's Service (its ClusterIP: kube-proxy routes
	// the host's connections to it); apiURL the API's.
	gatewayURL, apiURL string
	token              string
	images             = map[string]string{} // short name -> imported ref
	// textEmbedding is false when its base image could not be built.
	textEmbedding bool
	started       bool // this run brought the cluster up
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	start := time.Now()
	err := setup()
	if err != nil {
		// No skip: a missing cluster or a failed install fails the run.
		fmt.Fprintln(os.Stderr, "e2e-kube setup:", err)
		dumpState()
		teardown()
		return 1
	}
	logf("setup took %s", time.Since(start).Round(time.Second))
	code := m.Run()
	if code != 0 {
		dumpState()
	}
	teardown()
	return code
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[e2e-kube %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func setup() error {
	var err error
	if repo, err = filepath.Abs("../.."); err != nil {
		return err
	}
	clusterDir = os.Getenv("AIM_CLUSTER_DIR")
	if clusterDir == "" {
		clusterDir = "/tmp/aim-cluster"
	}
	kubeconfig = filepath.Join(clusterDir, "kubeconfig")
	if kubectlPath, err = exec.LookPath("kubectl"); err != nil {
		// build.sh builds one where Debian has none.
		home, _ := os.UserHomeDir()
		kubectlPath = filepath.Join(home, ".cache/aim/kube/kubernetes-v1.32.4/kubectl")
	}
	if err := clusterUp(); err != nil {
		return err
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	if kc, err = kubernetes.NewForConfig(rc); err != nil {
		return err
	}
	scheme, err := kube.Scheme()
	if err != nil {
		return err
	}
	if cl, err = client.New(rc, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if err := buildImages(); err != nil {
		return err
	}
	if err := registryVolume(); err != nil {
		return err
	}
	if err := install(); err != nil {
		return err
	}
	return pushBaseImages()
}

// clusterUp uses the cluster that runs, or brings one up. A cluster that
// is coming up (another engineer's up.sh) is waited for, never restarted:
// up.sh takes down a cluster it finds unhealthy.
func clusterUp() error {
	// This cluster's apiserver names the state directory in its flags (an
	// envtest apiserver of another test does not).
	if exec.Command("pgrep", "-f", "kube-apiserver.*"+regexp.QuoteMeta(clusterDir)+"/").Run() == nil {
		logf("a cluster runs already; using it (it is left up)")
		return waitCluster(5 * time.Minute)
	}
	if exec.Command("pgrep", "-f", "test/cluster/build.sh").Run() == nil {
		logf("test/cluster/build.sh is running; waiting for it")
		for exec.Command("pgrep", "-f", "test/cluster/build.sh").Run() == nil {
			time.Sleep(5 * time.Second)
		}
	}
	logf("building the cluster's parts (cached) and bringing it up")
	if _, err := sh(repo, nil, "test/cluster/build.sh"); err != nil {
		return err
	}
	if _, err := sh(repo, nil, "test/cluster/up.sh"); err != nil {
		return err
	}
	started = true
	return waitCluster(2 * time.Minute)
}

func waitCluster(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		out, err := exec.Command(kubectlPath, "--kubeconfig", kubeconfig, "get", "--raw", "/readyz").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "ok" {
			out, err = exec.Command(kubectlPath, "--kubeconfig", kubeconfig, "get", "nodes", "-o",
				`jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}`).CombinedOutput()
			if err == nil && strings.Contains(string(out), "True") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster at %s is not ready after %s: %s %v", kubeconfig, d, out, err)
		}
		time.Sleep(2 * time.Second)
	}
}

func teardown() {
	for _, d := range exampleDirs {
		_ = os.RemoveAll(d)
	}
	if os.Getenv("KEEP_CLUSTER") == "1" {
		logf("KEEP_CLUSTER=1: leaving the release and the cluster up; KUBECONFIG=%s", kubeconfig)
		return
	}
	if kc != nil {
		logf("removing namespace %s", ns)
		if out, err := sh(repo, nil, helmPath(), "--kubeconfig", kubeconfig, "uninstall", release, "-n", ns, "--wait", "--timeout", "2m"); err != nil {
			logf("helm uninstall: %v: %s", err, out)
		}
		_ = kc.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	}
	if started {
		logf("taking down the cluster this run brought up")
		if out, err := sh(repo, nil, "test/cluster/down.sh"); err != nil {
			logf("down.sh: %v: %s", err, out)
		}
	}
}

// dumpState prints what a failure needs looked at.
func dumpState() {
	if kc == nil {
		return
	}
	for _, args := range [][]string{
		{"get", "solutions,deployments,pods,svc,endpointslices", "-n", ns, "-o", "wide"},
		{"logs", "-n", ns, "-l", "app.kubernetes.io/component=operator", "--tail", "40"},
		{"logs", "-n", ns, "-l", "app.kubernetes.io/component=gateway", "--tail", "40", "--prefix"},
		{"logs", "-n", ns, "-l", "app.kubernetes.io/component=api", "--tail", "40"},
		{"get", "events", "-n", ns, "--sort-by", ".lastTimestamp"},
	} {
		out, _ := kubectl(args...)
		fmt.Fprintf(os.Stderr, "\n--- kubectl %s\n%s\n", strings.Join(args, " "), tail(out, 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// sh runs a command in dir and returns its combined output; a failure's
// error carries the output's end.
func sh(dir string, env []string, name string, args ...string) (string, error) {
	return shIn(dir, env, "", name, args...)
}

// shIn is sh with stdin.
func shIn(dir string, env []string, stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 30))
	}
	return out.String(), nil
}

func kubectl(args ...string) (string, error) {
	return sh(repo, nil, kubectlPath, append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

// aim runs the aim CLI against the in-cluster API as the admin.
func aim(args ...string) (string, error) {
	return aimAs(token, "", args...)
}

// aimAs runs the aim CLI against the in-cluster API with token tok and
// stdin.
func aimAs(tok, stdin string, args ...string) (string, error) {
	return shIn(repo, []string{"AIM_SERVER=" + apiURL, "AIM_TOKEN=" + tok, "XDG_CONFIG_HOME=" + os.TempDir()}, stdin, aimBin, args...)
}

// waitFor calls f every interval until it says done or d passes; f's
// error says why it is not done yet, and the last one is returned.
func waitFor(d, interval time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(d)
	var last error
	for {
		done, err := f()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%s: not after %s; last error: %w", what, d, last)
			}
			return fmt.Errorf("%s: not after %s", what, d)
		}
		time.Sleep(interval)
	}
}

// httpClient talks to the gateway: keep-alive, many connections.
var httpClient = &http.Client{
	Timeout: 3 * time.Minute,
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     30 * time.Second,
	},
}

// get asks the gateway for path on solution sol's host.
func get(ctx context.Context, sol, path string, header ...string) (int, string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+path, nil)
	if err != nil {
		return 0, "", nil, err
	}
	req.Host = sol + "." + domain
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

// podsOf lists the pods of a solution (or of one of its components) that
// are not being deleted.
func podsOf(ctx context.Context, sol string, comp string) ([]corev1.Pod, error) {
	sel := "aim.dev/solution=" + sol
	if comp != "" {
		sel += ",aim.dev/component=" + comp
	}
	l, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// allPodsOf counts a solution's pods, those terminating included.
func allPodsOf(ctx context.Context, sol string) (int, error) {
	l, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "aim.dev/solution=" + sol})
	if err != nil {
		return 0, err
	}
	return len(l.Items), nil
}

// tokenLine finds the token in a text (token=…) or JSON ("token":"…") log.
var tokenLine = regexp.MustCompile(`token"?[=:]"?(aim_[A-Za-z0-9_\-]+)`)

// adminToken reads the token the API's first start logged.
func adminToken() (string, error) {
	var tok string
	err := waitFor(time.Minute, time.Second, "the API's admin token in its log", func() (bool, error) {
		out, err := kubectl("logs", "-n", ns, "-l", "app.kubernetes.io/component=api", "--tail", "-1")
		if err != nil {
			return false, err
		}
		if m := tokenLine.FindStringSubmatch(out); m != nil {
			tok = m[1]
			return true, nil
		}
		return false, errors.New("no token= in the API's log")
	})
	return tok, err
}
