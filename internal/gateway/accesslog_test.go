package gateway

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer records every write to it as one piece.
type lockedBuffer struct {
	mu     sync.Mutex
	writes []string
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes = append(l.writes, string(p))
	return len(p), nil
}

func (l *lockedBuffer) all() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.writes, ""), len(l.writes)
}

func TestLogBufferBatchesWholeLines(t *testing.T) {
	var dst lockedBuffer
	b := newLogBuffer(&dst, 100, time.Hour)
	line := strings.Repeat("x", 29) + "\n" // 30 bytes: three fit in 100
	for range 7 {
		b.Write([]byte(line))
	}
	got, n := dst.all()
	if n != 2 || got != strings.Repeat(line, 6) {
		t.Fatalf("before Close: %d writes of %q, want 2 of three lines each", n, got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := dst.all(); got != strings.Repeat(line, 7) {
		t.Fatalf("after Close: %q", got)
	}
	if _, err := b.Write([]byte(line)); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func TestLogBufferFlushesInTime(t *testing.T) {
	var dst lockedBuffer
	b := newLogBuffer(&dst, 1<<20, 20*time.Millisecond)
	defer b.Close()
	b.Write([]byte("one\n"))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if got, _ := dst.all(); got == "one\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was never written")
		}
	}
}

func TestOpenAccessLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	log, closeLog, err := OpenAccessLog(path, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		log.Info("request", "n", i, "uri", strings.Repeat("/a", i%50))
	}
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if len(lines) != 1000 {
		t.Fatalf("%d lines, want 1000", len(lines))
	}
	for i, l := range lines {
		var e struct{ N int }
		if err := json.Unmarshal(l, &e); err != nil || e.N != i {
			t.Fatalf("line %d: %q (%v)", i, l, err)
		}
	}

	if _, _, err := OpenAccessLog(path, false); err == nil {
		t.Error("a file was accepted where only stdout and stderr are")
	}
	if _, _, err := OpenAccessLog(filepath.Join(t.TempDir(), "no", "such", "dir"), true); err == nil {
		t.Error("an unwritable path was accepted")
	}
	if l, closeLog, err := OpenAccessLog("", true); l != nil || err != nil || closeLog() != nil {
		t.Errorf("no access log: %v, %v", l, err)
	}
}
