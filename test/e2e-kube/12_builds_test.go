//go:build kube

package e2ekube

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Builds' limits in this run (the chart's builds.*), small so that the
// limits' tests end soon.
const (
	buildMemory     = "1Gi"
	buildTimeout    = 3 * time.Minute
	buildMaxContext = "4Mi"
)

// partComparerDir is the copy of examples/part-comparer that
// TestDeployPartComparer deployed, built in the cluster.
var partComparerDir string

func needPartComparer(t *testing.T) {
	t.Helper()
	if partComparerDir == "" {
		t.Fatal("TestDeployPartComparer did not run or failed")
	}
}

// variant copies partComparerDir with the engine's directory changed by
// edit.
func variant(t *testing.T, edit func(engine string)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "part-comparer")
	// -a: the unchanged files keep their times, so their contexts are the
	// same tar.
	if _, err := sh(repo, nil, "cp", "-a", partComparerDir, dir); err != nil {
		t.Fatal(err)
	}
	edit(filepath.Join(dir, "engine"))
	return dir
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildChangedComponentOnly: with the engine's directory changed,
// a redeploy builds the engine only; web and api keep their images.
func TestRebuildChangedComponentOnly(t *testing.T) {
	needPartComparer(t)
	before, err := solution(context.Background(), "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	// A label changes the image (a changed source file that compiles to
	// the same binary would not) and keeps the build's steps cached.
	dir := variant(t, func(engine string) {
		appendFile(t, filepath.Join(engine, "Dockerfile"), "\nLABEL aim.e2e.changed=\""+time.Now().UTC().Format(time.RFC3339Nano)+"\"\n")
	})
	start := time.Now()
	out, err := aim("deploy", dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("redeploy with the engine changed took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	built := builtImages(out)
	if built["engine"] == "" || built["web"] != "" || built["api"] != "" {
		t.Errorf("want the engine alone built, got %v", built)
	}
	t.Logf("cached build of engine (its base and unchanged steps from the registry's cache): %s", built["engine"])
	for _, c := range []string{"web", "api"} {
		if !strings.Contains(out, c+" | context unchanged since its last build") {
			t.Errorf("aim deploy does not say %s is unchanged", c)
		}
	}
	after, err := solution(context.Background(), "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range after.Spec.Components {
		changed := c.Image != before.Spec.Components[i].Image
		if changed != (c.Name == "engine") {
			t.Errorf("component %s: image %s -> %s", c.Name, before.Spec.Components[i].Image, c.Image)
		}
	}
	servesPartComparer(t)
}

// servesPartComparer: the gateway still serves part-comparer, engine
// included.
func servesPartComparer(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, body, _, err := get(ctx, "part-comparer", "/api/parts")
	if err != nil || code != http.StatusOK {
		t.Errorf("part-comparer does not answer /api/parts: %d %v %s", code, err, tail(body, 5))
	}
}

// TestFailedBuildsKeepServing: a failing Dockerfile, a build over its
// memory limit, one over its time limit and a context over the size limit
// each fail the deploy, saying why, and part-comparer's serving version
// stays.
func TestFailedBuildsKeepServing(t *testing.T) {
	needPartComparer(t)
	before, err := solution(context.Background(), "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := func(step string) func(string) {
		return func(engine string) {
			appendFile(t, filepath.Join(engine, "Dockerfile"), "\nFROM build AS fails\n"+step+"\n")
		}
	}
	for _, tc := range []struct {
		name string
		edit func(engine string)
		want []string
	}{
		{"failing Dockerfile", dockerfile(`RUN echo "aim-e2e: this step fails" && exit 3`),
			[]string{"the build in the cluster failed", "aim-e2e: this step fails", "previous version keeps serving"}},
		// tail keeps a line with no end in memory.
		{"over the memory limit", dockerfile(`RUN head -c 3G /dev/zero | tail >/dev/null`),
			[]string{"ran out of memory", buildMemory, "previous version keeps serving"}},
		{"over the time limit", dockerfile(`RUN sleep 600`),
			[]string{"longer than its time limit of " + buildTimeout.String(), "previous version keeps serving"}},
		{"context over the limit", func(engine string) {
			b := make([]byte, 5<<20)
			_, _ = rand.Read(b)
			if err := os.WriteFile(filepath.Join(engine, "big.bin"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"larger than the cluster's limit for builds", "previous version keeps serving"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, err := aim("deploy", variant(t, tc.edit))
			t.Logf("the deploy ended after %s:\n%s", time.Since(start).Round(time.Millisecond), tail(out, 25))
			if err == nil {
				t.Fatal("the deploy succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("the failure does not say %q", w)
				}
			}
			sol, err := solution(context.Background(), "part-comparer")
			if err != nil {
				t.Fatal(err)
			}
			if sol.Generation != before.Generation {
				t.Errorf("the Solution's spec changed: generation %d -> %d", before.Generation, sol.Generation)
			}
			servesPartComparer(t)
		})
	}
}

// apiProbe is a build step that tries the API server from inside a
// build, with no token and with every token it can find, and prints what
// it got; the build then fails so that nothing deploys.
const apiProbe = `package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	tokens := map[string]string{"none": "", "forged": "aim-e2e-forged-token"}
	for _, g := range []string{"/var/run/secrets/kubernetes.io/serviceaccount/token", "/run/secrets/*/*/token", "/var/run/aim-build/*/*", "/workspace/*"} {
		m, _ := filepath.Glob(g)
		for _, f := range m {
			if b, err := os.ReadFile(f); err == nil {
				tokens[f] = strings.TrimSpace(string(b))
			}
		}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for _, host := range []string{"kubernetes.default.svc", "10.96.0.1"} {
		for from, tok := range tokens {
			req, _ := http.NewRequest("GET", "https://"+host+"/api/v1/namespaces/aim-e2e-builds/secrets", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := c.Do(req)
			if err != nil {
				fmt.Printf("aim-probe host=%s token=%s error=%v\n", host, from, err)
				continue
			}
			resp.Body.Close()
			fmt.Printf("aim-probe host=%s token=%s status=%d\n", host, from, resp.StatusCode)
		}
	}
	os.Exit(1)
}
`

// probeVariant is part-comparer with a last build stage that runs the Go
// program src (in directory name of the engine's context) as a RUN step.
func probeVariant(t *testing.T, name, src string) string {
	return variant(t, func(engine string) {
		if err := os.MkdirAll(filepath.Join(engine, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(engine, name, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		appendFile(t, filepath.Join(engine, "Dockerfile"), "\nFROM build AS "+name+"\nRUN cd "+name+" && go run main.go\n")
	})
}

// TestBuildStepGetsNoAPIRights: a build step that calls the API server,
// with and without any token it can find, gets 401 or 403.
func TestBuildStepGetsNoAPIRights(t *testing.T) {
	needPartComparer(t)
	out, err := aim("deploy", probeVariant(t, "probe", apiProbe))
	if err == nil {
		t.Fatal("the probe's build succeeded")
	}
	// Each line is in the streamed log and again in the failure's last
	// lines.
	lines := slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`aim-probe host=\S+ token=\S+ (status|error)=.*`).FindAllString(out, -1))))
	t.Logf("what a build step got from the API server:\n%s", strings.Join(lines, "\n"))
	statuses := 0
	for _, l := range lines {
		if strings.Contains(l, "status=") {
			statuses++
			if !strings.HasSuffix(l, "status=401") && !strings.HasSuffix(l, "status=403") {
				t.Errorf("a build step got more than a refusal: %s", l)
			}
		}
	}
	if statuses == 0 {
		t.Errorf("the probe reached the API server not once (it must, to show the refusal):\n%s", tail(out, 30))
	}
}
