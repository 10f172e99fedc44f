package controller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/testlog"
)

// trialRuntime is the fake engine with trials: each reports what trial
// says for its component.
type trialRuntime struct {
	*fakeRuntime
	trial func(component string) *runtime.Trial

	mu     sync.Mutex
	trials []string // components tried
}

func (f *trialRuntime) Trial(_ context.Context, _ runtime.Spec, component string, _ func(context.Context, string) bool, _ time.Duration) (*runtime.Trial, error) {
	f.mu.Lock()
	f.trials = append(f.trials, component)
	f.mu.Unlock()
	return f.trial(component), nil
}

func newTrialHarness(t *testing.T, trial func(string) *runtime.Trial) (*harness, *trialRuntime) {
	t.Helper()
	tr := &trialRuntime{fakeRuntime: newFakeRuntime(t), trial: trial}
	h := &harness{rt: tr.fakeRuntime, b: &fakeBuilder{}, st: newFakeStore(), routes: newFakeRoutes()}
	h.c = New(Config{StartTimeout: 2 * time.Second, Logger: testlog.Logger(t, slog.LevelDebug)}, tr, h.b, h.st, h.routes)
	return h, tr
}

// TestDeployReportsTrials: what a deploy's trial replica showed is in the
// deployed solution's findings, as warnings with a fix that fits. The
// regression: an image that ignores SIGTERM deployed without a word,
// though aim check fails it, and every sleep then ended in SIGKILL.
func TestDeployReportsTrials(t *testing.T) {
	for _, tc := range []struct {
		name  string
		trial runtime.Trial
		want  []solution.Finding // ID, Status and a part of Evidence and Fix
	}{
		{"stops on SIGTERM, writes nothing", runtime.Trial{Answered: true, Command: []string{"/app"}, WorkingDir: "/", TmpSeen: true, Stopped: 40 * time.Millisecond, Grace: 10 * time.Second}, nil},
		{"ignores SIGTERM", runtime.Trial{Answered: true, Command: []string{"flask", "run"}, WorkingDir: "/", TmpSeen: true, Stopped: 10 * time.Second, Grace: 10 * time.Second, Killed: true, ExitCode: 137},
			[]solution.Finding{{ID: "sigterm", Status: "warn", Evidence: "was still running 10s after SIGTERM and was killed", Fix: "flask already runs in the exec form, as PID 1"}}},
		{"the image's app under /tmp", runtime.Trial{Answered: true, Command: []string{"python3", "app.py"}, WorkingDir: "/tmp/app", ImageTmp: []string{"/tmp/app/app.py"}, TmpSeen: true, Grace: 10 * time.Second},
			[]solution.Finding{{ID: "image-tmp", Status: "warn", Evidence: "the image has /tmp/app/app.py, hidden by the tmpfs at /tmp", Fix: "WORKDIR /app"}}},
		{"writes under /tmp", runtime.Trial{Answered: true, Command: []string{"/app"}, WorkingDir: "/", TmpSeen: true, TmpWrites: []string{"/tmp/notebook.ipynb"}, Grace: 10 * time.Second},
			[]solution.Finding{{ID: "writes-lost", Status: "warn", Evidence: "wrote /tmp/notebook.ipynb by the time it answered: that, and whatever it writes later, is lost when it sleeps", Fix: "keep uploads, notebooks and databases in a volume"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, rt := newTrialHarness(t, func(comp string) *runtime.Trial { tr := tc.trial; tr.Component = comp; return &tr })
			info := h.deploy(t, built)
			if len(rt.trials) != 1 || rt.trials[0] != "web" {
				t.Errorf("trials of %v, want web", rt.trials)
			}
			found := trialFindings(info.Findings)
			if len(found) != len(tc.want) {
				t.Fatalf("findings %+v, want %d", found, len(tc.want))
			}
			for i, w := range tc.want {
				f := found[i]
				if f.ID != w.ID || f.Status != w.Status || f.Component != "web" || !strings.Contains(f.Evidence, w.Evidence) || !strings.Contains(f.Fix, w.Fix) {
					t.Errorf("finding %+v, want %+v", f, w)
				}
			}
			// The status reads them from the store.
			got, err := h.c.Get(context.Background(), "hello")
			if err != nil || len(trialFindings(got.Findings)) != len(tc.want) {
				t.Errorf("Get: %v, findings %+v", err, got.Findings)
			}
		})
	}
}

// trialFindings are the findings of the rules a trial judges (the test
// replicas warn on openapi too).
func trialFindings(fs []solution.Finding) []solution.Finding {
	var out []solution.Finding
	for _, f := range fs {
		if f.ID == "sigterm" || f.ID == "image-tmp" || f.ID == "writes-lost" {
			out = append(out, f)
		}
	}
	return out
}

// TestDeployCommandError: a command the engine cannot run fails the
// deploy with the starts rule, the engine's cause and a fix, not with the
// engine's OCI runtime message.
func TestDeployCommandError(t *testing.T) {
	h, rt := newTrialHarness(t, func(string) *runtime.Trial { return &runtime.Trial{} })
	rt.applyErr = &runtime.CommandError{Component: "web", Command: []string{"uvicorn", "app:app"}, Path: "/usr/bin:/bin",
		Cause: `exec: "uvicorn": executable file not found in $PATH`, Err: errors.New("OCI runtime create failed")}
	_, err := h.c.Deploy(context.Background(), request(manifest(t, built)), nil)
	var se *solution.StartError
	if !errors.As(err, &se) {
		t.Fatalf("err = %#v, want a StartError", err)
	}
	want := failReport("component web did not start", "starts",
		`the engine could not run the command ["uvicorn", "app:app"]: exec: "uvicorn": executable file not found in $PATH`,
		`the image has no program "uvicorn" in its PATH (/usr/bin:/bin): install it in the image, or name it by its full path in ENTRYPOINT or CMD; a Python tool that is installed as a module runs as ["python3", "-m", "uvicorn", …]`)
	wantFailed(t, h, err, want)
	if strings.Contains(err.Error(), "OCI runtime") {
		t.Errorf("the engine's message shows: %v", err)
	}
	if len(rt.trials) != 0 {
		t.Errorf("trials of %v for a solution that never started", rt.trials)
	}
}
