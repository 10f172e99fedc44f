package dockercheck

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/scaffold"
)

// TestInterrupt runs the aim binary's check on a solution that takes long
// to start, sends SIGINT once its containers run, and asserts that aim
// exits 1 and leaves nothing behind.
func TestInterrupt(t *testing.T) {
	needEngine(t)
	bin := filepath.Join(t.TempDir(), "aim")
	build := exec.Command("go", "build", "-o", bin, "./cmd/aim")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building aim: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "check", "--start-timeout", "60s", filepath.Join(repoRoot, "testdata", "check", "slow-start"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The binary's run is told from others by its solution's name.
	f := filters.NewArgs(filters.Arg("label", LabelSolution+"=slow-start"), filters.Arg("label", LabelCheck))
	deadline := time.Now().Add(30 * time.Second)
	var runLabel string
	for {
		cs, err := engine.Client().ContainerList(context.Background(), container.ListOptions{Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) >= 2 {
			runLabel = LabelCheck + "=" + cs[0].Labels[LabelCheck]
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the check's containers never ran:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("exit status %d (%v), want 1", code, err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("aim check did not exit within 30s of SIGINT:\n%s", stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr does not say the check was interrupted:\n%s", stderr.String())
	}
	assertNoneLabelled(t, runLabel)
}

// TestTemplates writes each aim init template, builds it and checks it: it
// passes with no warning.
func TestTemplates(t *testing.T) {
	needEngine(t)
	for _, tmpl := range scaffold.Templates {
		t.Run(tmpl, func(t *testing.T) {
			base := map[string]string{"go": "aim-base/go:1.26", "static": "aim-base/go:1.26", "python": "aim-base/python:bookworm"}[tmpl]
			ensureBaseImage(t, base)
			dir := filepath.Join(t.TempDir(), "hello-"+tmpl)
			if _, err := scaffold.Write(dir, scaffold.Options{Template: tmpl}); err != nil {
				t.Fatal(err)
			}
			o := fastOptions(t)
			o.StartTimeout = 30 * time.Second
			o.Dir = dir
			rep, err := Run(context.Background(), engine.Client(), engine, o)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_ = check.WriteText(&b, rep)
			t.Log("\n" + b.String())
			for _, res := range rep.Results {
				if res.Status == check.Fail || (res.Status == check.Warn && !(tmpl == "static" && res.ID == "openapi")) {
					t.Errorf("%s: %s %q", res.ID, res.Status, res.Evidence)
				}
			}
			_ = engine.RemoveImage(context.Background(), rep.Images["web"])
			assertNothingLeft(t)
		})
	}
}

// ensureBaseImage builds a missing base image with images/build.sh, or
// fails saying how to get it.
func ensureBaseImage(t *testing.T, ref string) {
	t.Helper()
	if _, err := engine.Client().ImageInspect(context.Background(), ref); err == nil {
		return
	}
	script := filepath.Join(repoRoot, "images", "build.sh")
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("base image %s is missing and %s does not exist to build it", ref, script)
	}
	which := "go"
	if strings.Contains(ref, "python") {
		which = "python"
	}
	t.Logf("building the missing base image %s with %s %s", ref, script, which)
	if out, err := exec.Command(script, which).CombinedOutput(); err != nil {
		t.Fatalf("base image %s is missing; %s %s failed: %v\n%s", ref, script, which, err, out)
	}
}

// TestExamples checks every solution under examples/: none fails a rule.
func TestExamples(t *testing.T) {
	needEngine(t)
	dirs, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "aim.yaml"))
	if len(dirs) == 0 {
		t.Fatal("no examples/*/aim.yaml found")
	}
	ensureBaseImage(t, "aim-base/go:1.26")
	ensureBaseImage(t, "aim-base/python:bookworm")
	for _, m := range dirs {
		dir := filepath.Dir(m)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := fastOptions(t)
			o.StartTimeout = 60 * time.Second
			o.StopTimeout = 10 * time.Second
			o.Dir = dir
			rep, err := Run(context.Background(), engine.Client(), engine, o)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_ = check.WriteText(&b, rep)
			t.Log("\n" + b.String())
			if rep.Failed() {
				t.Errorf("%s fails the standard", dir)
			}
			assertNothingLeft(t)
		})
	}
}
