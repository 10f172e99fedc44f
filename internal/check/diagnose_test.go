package check

import (
	"strings"
	"testing"
	"time"
)

// TestCommandFailure pins the report on a container whose command cannot
// run (the engine's cause, as docker.CommandCause extracts it): the
// starts rule, evidence that names the command and the cause, and a fix
// that fits the cause. The regression:
// `exec: "uvicorn": executable file not found in $PATH` came back as the
// engine's OCI message.
func TestCommandFailure(t *testing.T) {
	const pathEnv = "/usr/local/bin:/usr/bin:/bin"
	for _, tc := range []struct {
		name     string
		cause    string
		command  []string
		evidence string
		fix      string
	}{
		{"not in PATH", `exec: "uvicorn": executable file not found in $PATH`, []string{"uvicorn", "app:app"},
			`the engine could not run the command ["uvicorn", "app:app"]: exec: "uvicorn": executable file not found in $PATH`,
			`no program "uvicorn" in its PATH (/usr/local/bin:/usr/bin:/bin): install it in the image, or name it by its full path`},
		{"no such file", `exec: "/app/run.sh": stat /app/run.sh: no such file or directory`, []string{"/app/run.sh"},
			"stat /app/run.sh: no such file or directory", "/app/run.sh is not in the image: COPY it there"},
		{"not executable", `exec: "/app/run.sh": permission denied`, []string{"/app/run.sh"},
			"permission denied", "RUN chmod 755 /app/run.sh"},
		{"working directory", `chdir to cwd ("/root/app") set in config.json failed: permission denied`, []string{"python3", "app.py"},
			`chdir to cwd ("/root/app")`, "the working directory /root/app cannot be entered (permission denied)"},
		{"another architecture", `exec /app/server: exec format error`, []string{"/app/server"},
			"exec format error", "another CPU architecture"},
		{"missing interpreter", `exec /app/run.py: no such file or directory`, []string{"/app/run.py"},
			"exec /app/run.py: no such file or directory", "/app/run.py exists but what it needs to run does not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := CommandFailure("web", tc.cause, tc.command, pathEnv)
			if res.ID != "starts" || res.Status != Fail {
				t.Errorf("got %s %s, want starts fail", res.ID, res.Status)
			}
			if !strings.Contains(res.Evidence, tc.evidence) {
				t.Errorf("evidence %q lacks %q", res.Evidence, tc.evidence)
			}
			if !strings.Contains(res.Fix, tc.fix) {
				t.Errorf("fix %q lacks %q", res.Fix, tc.fix)
			}
		})
	}
}

func TestSigtermFix(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command []string
		want    string
	}{
		{"shell form", []string{"/bin/sh", "-c", "flask run --host 0.0.0.0 --port 8080"}, "use the exec form"},
		{"a script", []string{"/entrypoint.sh", "serve"}, "start its last line with exec"},
		{"exec form: the program ignores it", []string{"flask", "run"}, "flask already runs in the exec form, as PID 1"},
		{"exec form names tini", []string{"/usr/bin/python3", "app.py"}, `ENTRYPOINT ["tini", "--", "/usr/bin/python3"]`},
		{"unknown command", nil, "handle SIGTERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SigtermFix(tc.command); !strings.Contains(got, tc.want) {
				t.Errorf("SigtermFix(%q) = %q, want it to say %q", tc.command, got, tc.want)
			}
		})
	}
}

func TestSigterm(t *testing.T) {
	for _, tc := range []struct {
		name     string
		killed   bool
		atDeploy bool
		status   Status
		evidence string
	}{
		{"exits", false, true, Pass, "exited 0.05s after SIGTERM (code 0)"},
		{"killed in aim check fails", true, false, Fail, "still running 10s after SIGTERM"},
		{"killed at deploy warns", true, true, Warn, "a trial replica was still running 10s after SIGTERM and was killed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			took := 50 * time.Millisecond
			if tc.killed {
				took = 10 * time.Second
			}
			res := Sigterm("web", took, 10*time.Second, tc.killed, 0, []string{"/testserver"}, tc.atDeploy)
			if res.Status != tc.status || !strings.Contains(res.Evidence, tc.evidence) {
				t.Errorf("got %s %q, want %s with %q", res.Status, res.Evidence, tc.status, tc.evidence)
			}
			if tc.killed && !strings.Contains(res.Fix, "testserver already runs in the exec form") {
				t.Errorf("the fix does not fit an exec-form command: %q", res.Fix)
			}
		})
	}
}

func TestStartsFix(t *testing.T) {
	for _, tc := range []struct {
		name, output string
		oom          bool
		want         string
	}{
		{"memory", "", true, "raise resources.memory"},
		{"read-only", "open /prometheus/queries.active: read-only file system", false, "write caches and scratch files under /tmp"},
		{"no home", "PermissionError: [Errno 13] Permission denied: '/nonexistent'", false, "set HOME in the component's env"},
		{"no home, on a read-only root (Jupyter)", "OSError: [Errno 30] Read-only file system: '/nonexistent'", false, "set HOME in the component's env"},
		{"hidden by /tmp", "python3: can't open file '/tmp/app/app.py': [Errno 2] No such file or directory", false, "put the application's files outside /tmp"},
		{"permission", "open /srv/model.bin: permission denied", false, "chmod -R a+rX"},
		{"otherwise", "fatal: cannot load the model", false, "read what its output says above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := StartsFix(tc.output, tc.oom); !strings.Contains(got, tc.want) {
				t.Errorf("StartsFix = %q, want it to say %q", got, tc.want)
			}
		})
	}
}

func TestImageTmp(t *testing.T) {
	for _, tc := range []struct {
		name       string
		workingDir string
		files      []string
		more       bool
		status     Status
		evidence   string
	}{
		{"nothing", "/app", nil, false, Pass, "nothing under /tmp"},
		{"WORKDIR under /tmp", "/tmp/app", []string{"/tmp/app/app.py"}, false, Warn, "WORKDIR is /tmp/app, under the tmpfs aim mounts at /tmp: the process starts in an empty directory; the image has /tmp/app/app.py, hidden by the tmpfs at /tmp"},
		{"files only, and more", "", []string{"/tmp/a", "/tmp/b"}, true, Warn, "the image has /tmp/a, /tmp/b and more, hidden"},
		{"WORKDIR /tmp itself", "/tmp", nil, false, Warn, "WORKDIR is /tmp,"},
		{"a name that only starts like /tmp", "/tmpl", nil, false, Pass, "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := ImageTmp("web", tc.workingDir, tc.files, tc.more)
			if res.Status != tc.status || !strings.Contains(res.Evidence, tc.evidence) {
				t.Errorf("got %s %q, want %s with %q", res.Status, res.Evidence, tc.status, tc.evidence)
			}
		})
	}
}

func TestWritesLost(t *testing.T) {
	for _, tc := range []struct {
		name         string
		outside, tmp []string
		seen         bool
		status       Status
		evidence     string
	}{
		{"nothing", nil, nil, true, Pass, "wrote nothing by the time it answered; whatever it writes later (in /tmp or a writable path) is lost when it sleeps"},
		{"to /tmp", nil, []string{"/tmp/uploads/a.png"}, true, Warn, "wrote /tmp/uploads/a.png by the time it answered: that, and whatever it writes later, is lost when it sleeps"},
		{"outside /tmp", []string{"/var/lib/app/db"}, nil, false, Warn, "wrote /var/lib/app/db"},
		{"unseen", nil, nil, false, Skip, "could not be read"},
		{"many", nil, []string{"/tmp/1", "/tmp/2", "/tmp/3", "/tmp/4", "/tmp/5", "/tmp/6", "/tmp/7"}, true, Warn, "/tmp/5 and 2 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := WritesLost("web", tc.outside, tc.tmp, tc.seen)
			if res.Status != tc.status || !strings.Contains(res.Evidence, tc.evidence) {
				t.Errorf("got %s %q, want %s with %q", res.Status, res.Evidence, tc.status, tc.evidence)
			}
		})
	}
}
