package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	archive "github.com/moby/go-archive"
)

// The tests of issue 21, "bringing an existing app": what a provider met
// when they brought Jupyter, nginx, Flask, Prometheus and FastAPI apps as
// they were.

// buildImage builds tag from a Dockerfile and a README beside it, with
// the engine's classic builder, as aim builds (FROM the test image, or
// another the engine has: nothing is pulled).
func buildImage(t *testing.T, tag, dockerfile string) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": dockerfile, "README": "built by " + t.Name() + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := docker.ImageBuild(context.Background(), tar, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		t.Fatalf("building %s: %v", tag, err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("building %s: %s", tag, out)
	}
	t.Cleanup(func() {
		_, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

// finishedAt is when the container of a one-replica solution last
// stopped, as the engine recorded it.
func finishedAt(t *testing.T, a *Aim, name string) time.Time {
	t.Helper()
	cs := a.Containers(name)
	if len(cs) != 1 {
		t.Fatalf("%s has %d containers, want 1", name, len(cs))
	}
	info, err := docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, info.State.FinishedAt)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// TestSleepsDoNotWaitForOneThatIgnoresSIGTERM reproduces the first finding
// of issue 21: the scaler slept solutions one at a time, so a Flask app
// that ignores SIGTERM kept three idle solutions awake 10 s past their
// time. Here the four are woken at once; the stubborn one is due a second
// before the others, so its stop (the engine's whole 10 s grace) runs when
// theirs come due, and each of the others must have stopped within a
// second of its idle time.
func TestSleepsDoNotWaitForOneThatIgnoresSIGTERM(t *testing.T) {
	// A fine tick, so that a second's bound measures the stops, not the
	// scaler's period.
	a := StartAim(t, "--scale-every", "100ms")
	const idle = 3 * time.Second
	others := []string{"quick1", "quick2", "quick3"}
	var wg sync.WaitGroup
	deploy := func(manifest string) {
		defer wg.Done()
		if _, errOut, err := a.CLI("deploy", "-q", writeSolution(t, manifest, nil)); err != nil {
			t.Errorf("deploy: %v\n%s", err, errOut)
		}
	}
	wg.Add(1 + len(others))
	go deploy(sleepyManifest("stubborn", "2s", "MODE: ignore-sigterm"))
	for _, n := range others {
		go deploy(sleepyManifest(n, idle.String(), ""))
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, n := range append([]string{"stubborn"}, others...) {
		waitState(t, a, n, "sleeping", 30*time.Second)
	}

	// Wake all four at once; from the last answer, each is idle.
	for _, n := range append([]string{"stubborn"}, others...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body := a.Get(n, "/whoami"); code != 200 {
				t.Errorf("waking %s: %d %s", n, code, body)
			}
		}()
	}
	wg.Wait()
	touched := time.Now()
	if t.Failed() {
		t.FailNow()
	}
	for _, n := range others {
		waitState(t, a, n, "sleeping", 20*time.Second)
	}
	stubbornStopping := strings.Contains(a.MustCLI("status", "stubborn"), "State:       stopping")
	for _, n := range others {
		late := finishedAt(t, a, n).Sub(touched.Add(idle))
		t.Logf("%s stopped %s after its idle time", n, late.Round(time.Millisecond))
		if late > time.Second {
			t.Errorf("%s stopped %s after its idle time, want within a second", n, late.Round(time.Millisecond))
		}
	}
	if !stubbornStopping {
		t.Errorf("stubborn had finished stopping when the others slept; the test did not overlap the stops")
	}
	waitState(t, a, "stubborn", "sleeping", 20*time.Second)
	if took := finishedAt(t, a, "stubborn").Sub(touched.Add(2 * time.Second)); took < 9*time.Second {
		t.Errorf("stubborn stopped %s after its idle time; it ignores SIGTERM, so its stop should take the 10s grace", took)
	}
}

// TestDeployReportsWhatCheckFails: aim deploy accepted what aim check
// fails on sigterm without a word, and a wrong command came back as the
// engine's OCI runtime message. Each now gets a report with the rule, the
// evidence and a fix that fits, in aim deploy and aim status.
func TestDeployReportsWhatCheckFails(t *testing.T) {
	a := StartAim(t)
	t.Run("ignores SIGTERM", func(t *testing.T) {
		dir := writeSolution(t, "name: stubborn\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env: {MODE: ignore-sigterm, RECOMMENDED: \"1\"}\n", nil)
		out, errOut, err := a.CLI("deploy", dir)
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, errOut)
		}
		t.Logf("aim deploy:\n%s%s", errOut, out)
		st := a.MustCLI("status", "stubborn")
		t.Logf("aim status:\n%s", st)
		for where, text := range map[string]string{"aim deploy": errOut, "aim status": st} {
			for _, want := range []string{
				"WARN  sigterm",
				"a trial replica was still running 10s after SIGTERM and was killed: every sleep of this solution waits 10s, then ends it with SIGKILL",
				// The image already uses the exec form: the fix says so.
				"fix: testserver already runs in the exec form, as PID 1, so it gets SIGTERM and ignores it",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %q", where, want)
				}
			}
		}
		if !strings.Contains(st, "State:       ready") || !strings.Contains(st, "is lost when it sleeps") {
			t.Errorf("aim status does not say it serves and that what it writes is lost:\n%s", st)
		}
	})
	t.Run("missing executable", func(t *testing.T) {
		tag := "aim-test/uvicorn-missing:e2e"
		buildImage(t, tag, "FROM "+TestImage+"\nENTRYPOINT [\"uvicorn\", \"app:app\", \"--host\", \"0.0.0.0\", \"--port\", \"8080\"]\n")
		_, errOut, err := a.CLI("deploy", "--name", "wrongcmd", "--image", tag)
		if err == nil {
			t.Fatal("a deploy whose command cannot run was accepted")
		}
		t.Logf("aim deploy:\n%s", errOut)
		st := a.MustCLI("status", "wrongcmd")
		t.Logf("aim status:\n%s", st)
		for where, text := range map[string]string{"aim deploy": errOut, "aim status": st} {
			for _, want := range []string{
				"FAIL  starts",
				`the engine could not run the command ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8080"]: exec: "uvicorn": executable file not found in $PATH`,
				`fix: the image has no program "uvicorn" in its PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)`,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %q", where, want)
				}
			}
			if strings.Contains(text, "OCI runtime") {
				t.Errorf("%s shows the engine's raw message", where)
			}
		}
		if !strings.Contains(st, "State:       failed") {
			t.Errorf("status:\n%s", st)
		}
	})
}

// jupyterImage is Jupyter Notebook from Debian's packages, as
// `images/build.sh jupyter` makes it: the notebook server on 8080 and
// nothing changed for aim.
const jupyterImage = "aim-base/jupyter:bookworm"

// TestJupyterStartsAsItIs: uid 65534's HOME is /nonexistent, and Jupyter
// stopped at start with "Read-only file system: '/nonexistent'". With
// the HOME aim now gives it, the image starts as Debian packages it.
func TestJupyterStartsAsItIs(t *testing.T) {
	// The script skips an image that exists and keeps the root filesystem
	// it made in ~/.cache/aim: the first build takes minutes, the next
	// import seconds.
	start := time.Now()
	if out, err := exec.Command("../../images/build.sh", "jupyter").CombinedOutput(); err != nil {
		t.Fatalf("building %s (images/build.sh jupyter: Debian's jupyter-notebook on a debootstrap root; needs root): %v\n%s", jupyterImage, err, out)
	}
	t.Logf("%s ready in %s", jupyterImage, time.Since(start).Round(time.Millisecond))
	// Jupyter imports much of Python before it listens: on a cold, busy
	// machine with its one core of limit that took over the harness's 15 s
	// in CI, so this test gives it aim's own default.
	a := StartAim(t, "--start-timeout", "60s")
	out, errOut, err := a.CLI("deploy", "--name", "notebook", "--image", jupyterImage)
	if err != nil {
		t.Fatalf("Jupyter did not start under aim: %v\n%s", err, errOut)
	}
	t.Logf("aim deploy:\n%s%s", errOut, out)
	code, body := a.Get("notebook", "/login")
	if code != 200 || !strings.Contains(body, "Jupyter") {
		t.Errorf("GET /login through the gateway: %d\n%.300s", code, body)
	}
	st := a.MustCLI("status", "notebook")
	t.Logf("aim status:\n%s", st)
	// Jupyter keeps its runtime files under HOME, now /tmp: said to be
	// lost when it sleeps, as a saved notebook would be.
	if !strings.Contains(st, "WARN  writes-lost") || !strings.Contains(st, "/tmp/.local/share/jupyter/runtime/") {
		t.Errorf("the status does not say what Jupyter wrote is lost when it sleeps:\n%s", st)
	}
}

// TestFilesUnderTmpAreNamed: the tmpfs aim mounts at /tmp hides what the
// image put there (WORKDIR /tmp/app failed with "can't open file"); aim
// check and aim deploy name the hidden path.
func TestFilesUnderTmpAreNamed(t *testing.T) {
	tag := "aim-test/tmp-app:e2e"
	buildImage(t, tag, "FROM "+TestImage+"\nCOPY README /tmp/app/README\nWORKDIR /tmp/app\n")
	want := []string{
		"WARN  image-tmp",
		"WORKDIR is /tmp/app, under the tmpfs aim mounts at /tmp: the process starts in an empty directory; the image has /tmp/app/README, hidden by the tmpfs at /tmp",
		"fix: put the application's files outside /tmp",
	}
	check := exec.Command(aimBin, "check", "--start-timeout", "15s", "--stop-timeout", "5s", "--image", tag)
	out, err := check.CombinedOutput()
	t.Logf("aim check:\n%s", out)
	if err != nil {
		t.Errorf("aim check failed an image whose only finding warns: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("aim check lacks %q", w)
		}
	}
	a := StartAim(t)
	_, errOut, err := a.CLI("deploy", "--name", "tmpapp", "--image", tag)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, errOut)
	}
	st := a.MustCLI("status", "tmpapp")
	for where, text := range map[string]string{"aim deploy": errOut, "aim status": st} {
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", where, w, text)
			}
		}
	}
}
