// Package testlog sends a test's logs to t.Log, for as long as the test
// runs: goroutines a test started (certmagic's, controller-runtime's)
// may still log after it ended, which t.Log would panic on.
package testlog

import (
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Writer writes each line given to it through t.Log until t ends, and
// drops it after.
func Writer(t testing.TB) io.Writer {
	w := &writer{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

// Logger is a text logger on Writer(t), at level and above.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(Writer(t), &slog.HandlerOptions{Level: level}))
}

type writer struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
