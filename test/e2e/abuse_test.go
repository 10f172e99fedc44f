package e2e

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// TestAbuseContained runs what a hostile tenant would inside its own
// solution (a fork bomb, a memory hog, a /tmp filler, a log flood) and
// checks that each runs into that solution's own limit while a bystander
// solution, and the platform, go on answering.
func TestAbuseContained(t *testing.T) {
	a := StartAim(t)
	dir := writeSolution(t, "name: hostile\ncomponents:\n  - name: web\n    image: "+TestImage+
		"\n    resources:\n      memory: 128Mi\n      pids: 64\n", nil)
	a.MustCLI("deploy", "-q", dir)
	a.MustCLI("deploy", "-q", "--name", "bystander", "--image", TestImage)
	bystanderAnswers := func(after string) {
		t.Helper()
		if code, body := a.Get("bystander", "/"); code != 200 {
			t.Errorf("after %s, the bystander answered %d: %s", after, code, body)
		}
		if out, _, err := a.CLI("ls"); err != nil || !strings.Contains(out, "bystander") {
			t.Errorf("after %s, aim ls: %v %s", after, err, out)
		}
	}
	var got struct {
		Started, Allocated int
		Written            int64
		Error              string
	}
	abuse := func(path string) int {
		t.Helper()
		got.Started, got.Allocated, got.Written, got.Error = 0, 0, 0, ""
		// A case before may have had the solution killed (that is its
		// limit working); the engine restarts it.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code, _ := a.Get("hostile", "/"); code == 200 {
				break
			}
		}
		code, body := a.Get("hostile", path)
		if code == 200 {
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
		}
		t.Logf("%s: %d %s", path, code, strings.TrimSpace(body))
		return code
	}

	t.Run("tmp filler", func(t *testing.T) {
		if abuse("/abuse/tmp") != 200 || got.Written > 64<<20 || !strings.Contains(got.Error, "no space left on device") {
			t.Errorf("the filler wrote %d bytes to /tmp and ended with %q; want at most the 64 MiB tmpfs and ENOSPC (a tmpfs is memory: the 128 MiB limit holds it)", got.Written, got.Error)
		}
		bystanderAnswers("filling /tmp")
	})
	t.Run("log flood", func(t *testing.T) {
		if abuse("/abuse/log?mb=80") != 200 {
			t.Fatal("the flood did not finish")
		}
		cs := a.Containers("hostile")
		if len(cs) == 0 {
			t.Fatal("no hostile container")
		}
		ci, err := docker.ContainerInspect(context.Background(), cs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, p := range []string{ci.LogPath, ci.LogPath + ".1", ci.LogPath + ".2", ci.LogPath + ".3"} {
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
		}
		// json-file keeps 3 files of 10 MB: 80 MiB of output leaves 30.
		if total == 0 || total > 32<<20 {
			t.Errorf("the engine keeps %d bytes of the container's log; want at most 3 × 10 MB", total)
		}
		bystanderAnswers("a log flood")
	})
	t.Run("fork bomb", func(t *testing.T) {
		if abuse("/abuse/fork") != 200 || got.Started >= 64 || !strings.Contains(got.Error, "resource temporarily unavailable") {
			t.Errorf("the fork bomb started %d processes and ended with %q; want fewer than the 64 pids and EAGAIN", got.Started, got.Error)
		}
		bystanderAnswers("a fork bomb")
	})
	t.Run("memory hog", func(t *testing.T) {
		since := time.Now()
		if code := abuse("/abuse/memory?mb=512"); code == 200 {
			t.Errorf("the hog was given %d MiB under a 128 MiB limit", got.Allocated)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msgs, errs := docker.Events(ctx, events.ListOptions{Since: since.Add(-time.Second).Format(time.RFC3339Nano),
			Filters: filters.NewArgs(filters.Arg("event", "oom"), filters.Arg("label", "dev.aim.solution=hostile"))})
		select {
		case <-msgs:
		case err := <-errs:
			t.Errorf("no oom event for the hostile container: %v", err)
		}
		bystanderAnswers("a memory hog")
	})
}
