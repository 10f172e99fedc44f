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
	"slices"
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

// finding is a rule's expected outcome in a corpus case.
type finding struct {
	rule     string
	status   check.Status
	evidence string // a part of it
	fix      string // a part of it; "" for any
}

// TestCorpus runs each broken solution of testdata/check: exactly its
// rules fail or warn, with the evidence, and every other rule passes or is
// skipped (a component that never answered cannot be judged further).
func TestCorpus(t *testing.T) {
	needEngine(t)
	cases := []struct {
		name  string
		finds []finding
	}{
		{"good", nil},
		{"siblings", nil},
		{"wrong-port", []finding{{"port-8080", check.Fail, "nothing on 8080 after 5s; the process listens on [::]:5000", ""}}},
		{"no-root", []finding{{"root-html", check.Fail, "GET / → 404", ""}}},
		{"json-root", []finding{{"root-html", check.Fail, "GET / → 200 application/json", ""}}},
		{"write-fs", []finding{
			{"read-only-fs", check.Fail, "wrote /cache.bin; read-only, it said: cannot write cache: open /cache.bin: read-only file system",
				"it also wrote /cache.bin at the top of the filesystem, which no writable path can take"},
			{"writes-lost", check.Warn, "wrote /cache.bin by the time it answered: that, and whatever it writes later, is lost when it sleeps", ""},
		}},
		// Issue 16: the writable: line, for read-only-fs and for starts.
		{"write-dir", []finding{
			{"starts", check.Fail, "cannot open the index: mkdir /data: read-only file system", "it wrote outside /tmp, which is read-only: add to the component in aim.yaml: writable: [/data]"},
			{"read-only-fs", check.Fail, "wrote /data/index/segment-0", "add to the component in aim.yaml: writable: [/data] (each an empty tmpfs of 64Mi"},
			{"writes-lost", check.Warn, "wrote /data/index/segment-0", ""},
		}},
		{"write-dir-writable", []finding{{"writes-lost", check.Warn, "wrote /data/index/segment-0 by the time it answered", ""}}},
		{"crash", []finding{{"starts", check.Fail, "exited with code 3", ""}}},
		{"slow-start", []finding{{"port-8080", check.Fail, "nothing on 8080 after 5s; the process listens on no TCP port", ""}}},
		{"ignore-sigterm", []finding{{"sigterm", check.Fail, "still running 3s after SIGTERM", "testserver already runs in the exec form, as PID 1, so it gets SIGTERM and ignores it"}}},
		{"internet", []finding{{"no-internet", check.Warn, "tried to connect to 198.51.100.1:443 at start", ""}}},
		// The regression: the evidence was the tail of the stack.
		{"panic", []finding{{"starts", check.Fail,
			`its output says: level=error msg="loading the index" err="open /models/index.json: no such file or directory" | panic: assignment to entry in nil map | goroutine 1 [running]:`, ""}}},
		{"home", nil},
		{"write-tmp", []finding{{"writes-lost", check.Warn, "wrote /tmp/uploads/first.png by the time it answered", "keep uploads, notebooks and databases in a volume"}}},
		{"tmp-workdir", []finding{
			{"starts", check.Fail, "testserver: can't open file '/tmp/app/app.py'", "it looks for a file under /tmp, which aim's empty tmpfs hides"},
			{"image-tmp", check.Warn, "WORKDIR is /tmp/app, under the tmpfs aim mounts at /tmp: the process starts in an empty directory; the image has /tmp/app/app.py, hidden by the tmpfs at /tmp", "WORKDIR /app"},
		}},
		{"missing-exec", []finding{{"starts", check.Fail,
			`the engine could not run the command ["uvicorn", "app:app", "--port", "8080"]: exec: "uvicorn": executable file not found in $PATH`,
			`the image has no program "uvicorn" in its PATH`}}},
		// Issue 20: / answers long before the API stops answering 503.
		{"late-api", []finding{{"readiness", check.Warn, "judged ready by GET / ", "add ready: {path: /-/ready} to component web in aim.yaml"}}},
		{"late-api-ready", nil},
		{"ready-never", []finding{{"port-8080", check.Fail, "but GET /-/ready (its ready.path) → 503 after 5s", "name a ready.path that answers 2xx"}}},
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
			failed := false
			for _, res := range rep.Results {
				i := slices.IndexFunc(tc.finds, func(f finding) bool { return f.rule == res.ID })
				if i < 0 {
					if res.Status != check.Pass && res.Status != check.Skip {
						t.Errorf("%s (not this case's rule): %s %q", res.ID, res.Status, res.Evidence)
					}
					continue
				}
				f := tc.finds[i]
				failed = failed || f.status == check.Fail
				if res.Status != f.status || !strings.Contains(res.Evidence, f.evidence) || !strings.Contains(res.Fix, f.fix) {
					t.Errorf("%s: got %s %q (fix: %s), want %s with %q (fix: %q)", res.ID, res.Status, res.Evidence, res.Fix, f.status, f.evidence, f.fix)
				}
			}
			for _, f := range tc.finds {
				if _, ok := rep.Result(f.rule, ""); !ok {
					t.Errorf("no result for %s", f.rule)
				}
			}
			if tc.name == "siblings" {
				if res, _ := rep.Result("siblings", "api"); res.Status != check.Pass {
					t.Errorf("siblings/api: got %s %q, want pass", res.Status, res.Evidence)
				}
			}
			if got := rep.Failed(); got != failed {
				t.Errorf("Failed() = %v, want %v", got, failed)
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
