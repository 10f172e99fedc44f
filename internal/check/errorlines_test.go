package check

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestErrorLines pins which lines of a process's last output the starts
// rule quotes. The regression it guards: for Prometheus, the evidence was
// the tail of a Go stack trace, while the cause was the lines above it.
func TestErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string // under testdata/output
		text    string // when no fixture
		n       int
		want    []string
	}{
		{name: "go panic after a logged error: the error, the panic, the first frame", fixture: "go-panic.txt", n: 4, want: []string{
			`ts=2026-01-10T09:12:01.119Z caller=query_logger.go:93 level=error component=activeQueryTracker msg="Error opening query log file" file=/prometheus/queries.active err="open /prometheus/queries.active: read-only file system"`,
			"panic: Unable to create mmap-ed active query log",
			"goroutine 1 [running]:",
			"github.com/prometheus/prometheus/promql.NewActiveQueryTracker({0x7ffd1f3b5e5f, 0xb}, 0x14, {0x3a31a40, 0xc000a2b8b0})",
		}},
		{name: "go panic: the panic line and what follows, not the other goroutines", fixture: "go-nil-map.txt", n: 3, want: []string{
			"panic: assignment to entry in nil map", "goroutine 1 [running]:", "main.loadIndex(...)",
		}},
		{name: "python traceback: its first line and its last, down to the exception", fixture: "python-traceback.txt", n: 4, want: []string{
			"Traceback (most recent call last):",
			"os.makedirs(path, mode=mode)",
			`File "<frozen os>", line 225, in makedirs`,
			"PermissionError: [Errno 13] Permission denied: '/nonexistent'",
		}},
		{name: "chained python exceptions: the last traceback", fixture: "python-chained.txt", n: 4, want: []string{
			"Traceback (most recent call last):",
			`File "/app/app.py", line 6, in <module>`,
			`raise SystemExit("no configuration")`,
			"RuntimeError: no configuration in /tmp/app",
		}},
		{name: "a traceback with room for one line: the exception", fixture: "python-traceback.txt", n: 1, want: []string{
			"PermissionError: [Errno 13] Permission denied: '/nonexistent'",
		}},
		{name: "node: the Error line and its first frames", fixture: "node-error.txt", n: 3, want: []string{
			"Error: Cannot find module '/app/server.js'",
			"at Module._resolveFilename (node:internal/modules/cjs/loader:1077:15)",
			"at Module._load (node:internal/modules/cjs/loader:922:27)",
		}},
		{name: "no crash report: the tail", fixture: "logged-error.txt", n: 2, want: []string{
			`2026/01/10 09:12:01 [emerg] 1#1: mkdir() "/var/lib/nginx/body" failed (30: Read-only file system)`,
			`nginx: [emerg] mkdir() "/var/lib/nginx/body" failed (30: Read-only file system)`,
		}},
		{name: "a logged error near the end and what follows it", text: "starting\nerror: cannot open /data/db\nshutting down\nbye\n", n: 2, want: []string{
			"error: cannot open /data/db", "shutting down",
		}},
		{name: "an error long before the end is not the cause", text: "error: no GPU, using the CPU\na\nb\nc\nd\nexited\n", n: 2, want: []string{"d", "exited"}},
		{name: "a crash loop: the last run's panic", text: "panic: first\n\ngoroutine 1 [running]:\nstarting\npanic: second\n\ngoroutine 1 [running]:\n", n: 2, want: []string{
			"panic: second", "goroutine 1 [running]:",
		}},
		{name: "fewer lines than asked", fixture: "plain.txt", n: 10, want: []string{"starting", "loading weights", "cannot load the model file /models/x.bin"}},
		{name: "nothing", text: "\n\n", n: 3, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.text
			if tc.fixture != "" {
				b, err := os.ReadFile(filepath.Join("testdata", "output", tc.fixture))
				if err != nil {
					t.Fatal(err)
				}
				out = string(b)
			}
			got := ErrorLines(out, tc.n)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
