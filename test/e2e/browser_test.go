package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The browser tests drive Debian's chromium headless with playwright-core
// (test/browser, plain Node scripts); screenshots are kept in
// test/artifacts/. Missing chromium or node modules are installed, never
// a reason to skip.
const (
	chromiumBin  = "/usr/bin/chromium"
	browserDir   = "../browser"
	artifactsDir = "../artifacts"
)

var (
	browserOnce sync.Once
	browserErr  error
)

func ensureBrowser(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("drives headless Chromium")
	}
	browserOnce.Do(func() {
		run := func(dir string, env []string, name string, args ...string) error {
			cmd := exec.Command(name, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return &cmdError{strings.Join(append([]string{name}, args...), " "), err, out}
			}
			return nil
		}
		if _, err := os.Stat(chromiumBin); err != nil {
			t.Logf("installing chromium")
			if browserErr = run("", []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", "update", "-qq"); browserErr != nil {
				return
			}
			if browserErr = run("", []string{"DEBIAN_FRONTEND=noninteractive"}, "apt-get", "install", "-y", "-qq", "chromium"); browserErr != nil {
				return
			}
		}
		if !modulesInstalled("playwright-core", "axe-core") {
			t.Logf("npm ci in test/browser")
			if browserErr = run(browserDir, nil, "npm", "ci", "--no-audit", "--no-fund"); browserErr != nil {
				return
			}
		}
		browserErr = os.MkdirAll(artifactsDir, 0o755)
	})
	if browserErr != nil {
		t.Fatalf("preparing headless Chromium: %v", browserErr)
	}
}

// modulesInstalled reports whether test/browser's node_modules has each
// of the modules (package.json gains some over time).
func modulesInstalled(names ...string) bool {
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(browserDir, "node_modules", n)); err != nil {
			return false
		}
	}
	return true
}

type cmdError struct {
	cmd string
	err error
	out []byte
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + string(e.out) }

// node runs a script of test/browser and decodes the JSON line it prints.
func node(t *testing.T, within time.Duration, result any, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	cmd.Dir = browserDir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	t.Logf("node %s: %s", script, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("node %s %s: %v\nstdout: %s\nstderr: %s", script, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	if err := json.Unmarshal(out.Bytes(), result); err != nil {
		t.Fatalf("node %s: %v\nstdout: %s\nstderr: %s", script, err, out.String(), errOut.String())
	}
}

func artifact(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(artifactsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(p) // a stale screenshot must not pass for a new one
	return p
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 2000 {
		t.Errorf("screenshot %s: %d bytes, %v", path, len(b), err)
		return
	}
	t.Logf("screenshot %s (%d KiB)", path, len(b)>>10)
}

// solutionURL is what a visitor types: http://<name>.localhost:<port>/.
func solutionURL(a *Aim, name string) string {
	_, port, _ := strings.Cut(a.Addr, ":")
	return "http://" + name + ".localhost:" + port + "/"
}

// A visitor uploads a part's STL on the part-comparer page, clicks
// "Compute similarity" and reads the ranked list: the part is first.
func TestBrowserPartComparer(t *testing.T) {
	ensureBrowser(t)
	a := startExamples(t)
	deployExample(t, a, "part-comparer")
	_, p, stl := partsAndSTL(t, a, func(ps []part) part {
		for _, p := range ps {
			if strings.HasPrefix(p.ID, "gear-") {
				return p
			}
		}
		return ps[len(ps)/2]
	})
	file := filepath.Join(t.TempDir(), p.ID+".stl")
	if err := os.WriteFile(file, stl, 0o644); err != nil {
		t.Fatal(err)
	}
	png := artifact(t, "part-comparer.png")
	var r struct {
		Status  string
		Results []struct {
			ID, Name, Shown string
			Score           float64
		}
		PageErrors []string
	}
	node(t, 3*time.Minute, &r, "compare.mjs", solutionURL(a, "part-comparer"), file, png)
	checkPNG(t, png)
	if len(r.Results) < 2 {
		t.Fatalf("the page shows %d results: %+v", len(r.Results), r)
	}
	t.Logf("status %q; first %s (%s) %s, second %s %s", r.Status, r.Results[0].ID, r.Results[0].Name, r.Results[0].Shown, r.Results[1].ID, r.Results[1].Shown)
	if r.Results[0].ID != p.ID || r.Results[0].Name != p.Name || r.Results[0].Score < 0.999 {
		t.Errorf("the uploaded part %s (%s) is not first: %+v", p.ID, p.Name, r.Results[0])
	}
	if r.Results[0].Score < r.Results[1].Score {
		t.Errorf("the list is not ranked: %+v", r.Results[:2])
	}
	if !strings.Contains(r.Status, p.ID+".stl") || len(r.PageErrors) > 0 {
		t.Errorf("status %q, page errors %v", r.Status, r.PageErrors)
	}
}

// A browser that opens a sleeping solution gets aim's self-refreshing
// "Starting …" page, which leads to the solution once it is up.
func TestBrowserWakesSleepingSolution(t *testing.T) {
	ensureBrowser(t)
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("nap", "2s", ""), nil))
	waitState(t, a, "nap", "sleeping", 15*time.Second)
	if n := running(a, "nap"); n != 0 {
		t.Fatalf("a sleeping solution has %d running containers", n)
	}
	waking, woken := artifact(t, "waking.png"), artifact(t, "woken.png")
	var r struct {
		First struct {
			Status     int
			RetryAfter string
			Starting   string
			Refresh    string
		}
		Navigations []struct{ Status, Ms int }
		Final       struct {
			H1, URL, Title string
			Ms             int
		}
	}
	node(t, 2*time.Minute, &r, "wake.mjs", solutionURL(a, "nap"), waking, woken, "60000")
	checkPNG(t, waking)
	checkPNG(t, woken)
	t.Logf("first answer %+v; navigations %+v; final %+v", r.First, r.Navigations, r.Final)
	if r.First.Status != 503 || r.First.RetryAfter != "1" || r.First.Refresh != "1" || !strings.HasPrefix(r.First.Starting, "Starting ") {
		t.Errorf("the first answer is not the starting page: %+v", r.First)
	}
	if r.Final.H1 != "hello from web" || r.Final.URL != solutionURL(a, "nap") {
		t.Errorf("the page did not lead to the solution: %+v", r.Final)
	}
	if n := len(r.Navigations); n < 2 || r.Navigations[n-1].Status != 200 {
		t.Errorf("navigations %+v: want the starting page, then the solution's 200", r.Navigations)
	}
	// (No `aim status` check here: with a 2s idle timeout the solution may
	// already be asleep again once the browser has closed.)
}
