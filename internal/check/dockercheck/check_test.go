package dockercheck

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime/docker"
)

// testImage is the test server FROM scratch; the corpus under
// testdata/check runs it in its broken modes.
const testImage = "aim-check-test/server:dev"

// repoRoot is where go test runs this package from, two levels down.
const repoRoot = "../../.."

var engine *docker.Docker

// testLabel marks what this test process's checks create, so that checks
// others run on the same engine meanwhile are not counted as left behind.
var testLabel = "dev.aim.check.test=" + newID()

// TestMain connects to the engine and builds the test image. Under -short
// the integration tests skip; otherwise a missing engine fails them all.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		ctx := context.Background()
		var err error
		if engine, err = docker.New(ctx, docker.Options{Prefix: "aim-check-test"}); err != nil {
			fmt.Fprintf(os.Stderr, "check's integration tests need a Docker engine (or -short): %v\n", err)
			os.Exit(1)
		}
		if err := buildTestImage(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", testImage, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// buildTestImage compiles test/testserver statically and builds it FROM
// scratch.
func buildTestImage(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "aim-check-test")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "testserver"), "./test/testserver")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "testserver"))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY testserver /testserver\nENTRYPOINT [\"/testserver\"]\n")},
		{"testserver", 0o755, bin},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return engine.Build(ctx, &b, "Dockerfile", testImage, nil)
}

func needEngine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs the Docker engine")
	}
}

// fastOptions keep the corpus quick: a component that does not answer in
// 5s fails, one still running 3s after SIGTERM fails.
func fastOptions(t *testing.T) Options {
	k, v, _ := strings.Cut(testLabel, "=")
	return Options{StartTimeout: 5 * time.Second, StopTimeout: 3 * time.Second, Labels: map[string]string{k: v}, Progress: func(s string) { t.Log(s) }}
}

// assertNothingLeft fails when a container or network of this process's
// checks remains.
func assertNothingLeft(t *testing.T) { t.Helper(); assertNoneLabelled(t, testLabel) }

// assertNoneLabelled fails when a container or network has label.
func assertNoneLabelled(t *testing.T, label string) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", label))
	cs, err := engine.Client().ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		t.Errorf("container %s (%s) is left behind", c.Names, c.State)
	}
	ns, err := engine.Client().NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		t.Errorf("network %s is left behind", n.Name)
	}
}

// TestCorpus runs each broken solution of testdata/check: exactly its rule
// fails or warns, with the evidence, and every other rule passes or is
// skipped (a component that never answered cannot be judged further).
func TestCorpus(t *testing.T) {
	needEngine(t)
	cases := []struct {
		name     string
		rule     string // "" for none
		status   check.Status
		evidence string
		fix      string // how the fix starts; "" checks none
	}{
		{"good", "", check.Pass, "", ""},
		{"siblings", "", check.Pass, "", ""},
		{"wrong-port", "port-8080", check.Fail, "nothing on 8080 after 5s; the process listens on [::]:5000", ""},
		{"no-root", "root-html", check.Fail, "GET / → 404", ""},
		{"json-root", "root-html", check.Fail, "GET / → 200 application/json", ""},
		{"write-fs", "read-only-fs", check.Fail, "wrote /cache.bin; read-only, it said: cannot write cache: open /cache.bin: read-only file system", ""},
		{"crash", "starts", check.Fail, "exited with code 3", ""},
		{"slow-start", "port-8080", check.Fail, "nothing on 8080 after 5s; the process listens on no TCP port", ""},
		{"ignore-sigterm", "sigterm", check.Fail, "still running 3s after SIGTERM", ""},
		{"internet", "no-internet", check.Warn, "tried to connect to 198.51.100.1:443 at start", ""},
		// Issue 20: / answers long before the API stops answering 503.
		{"late-api", "readiness", check.Warn, "judged ready by GET / ", "add ready: {path: /-/ready} to component web in aim.yaml"},
		{"late-api-ready", "", check.Pass, "", ""},
		{"ready-never", "port-8080", check.Fail, "but GET /-/ready (its ready.path) → 503 after 5s", "name a ready.path that answers 2xx"},
	}
	t.Cleanup(func() { assertNothingLeft(t) })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := fastOptions(t)
			o.Dir = filepath.Join(repoRoot, "testdata", "check", tc.name)
			rep, err := Run(context.Background(), engine.Client(), engine, o)
			if err != nil {
				t.Fatal(err)
			}
			var text bytes.Buffer
			_ = check.WriteText(&text, rep)
			t.Log("\n" + text.String())
			for _, res := range rep.Results {
				if res.ID == tc.rule {
					if res.Status != tc.status || !strings.Contains(res.Evidence, tc.evidence) {
						t.Errorf("%s: got %s %q, want %s with %q", res.ID, res.Status, res.Evidence, tc.status, tc.evidence)
					}
					if tc.fix != "" && !strings.HasPrefix(res.Fix, tc.fix) {
						t.Errorf("%s: fix %q, want it to start %q", res.ID, res.Fix, tc.fix)
					}
					continue
				}
				if res.Status != check.Pass && res.Status != check.Skip {
					t.Errorf("%s (not this case's rule): %s %q", res.ID, res.Status, res.Evidence)
				}
			}
			if tc.rule != "" {
				if _, ok := rep.Result(tc.rule, ""); !ok {
					t.Errorf("no result for %s", tc.rule)
				}
			}
			if tc.name == "siblings" {
				if res, _ := rep.Result("siblings", "api"); res.Status != check.Pass {
					t.Errorf("siblings/api: got %s %q, want pass", res.Status, res.Evidence)
				}
			}
			if got, want := rep.Failed(), tc.status == check.Fail; got != want {
				t.Errorf("Failed() = %v, want %v", got, want)
			}
		})
	}
}

// TestImage checks a minimal FROM-scratch image as a one-component
// solution: it passes, warning only that it has no OpenAPI document and no
// health path.
func TestImage(t *testing.T) {
	needEngine(t)
	o := fastOptions(t)
	o.Image = testImage
	rep, err := Run(context.Background(), engine.Client(), engine, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		var b bytes.Buffer
		_ = check.WriteText(&b, rep)
		t.Errorf("the test image fails:\n%s", b.String())
	}
	if rep.ImageSize == 0 || rep.IdleMemory == 0 || rep.StartupTime == 0 {
		t.Errorf("measurements missing: %+v", rep)
	}
	assertNothingLeft(t)
}
