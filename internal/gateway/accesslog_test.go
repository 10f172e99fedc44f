package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
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

// slogLine is the line slog's JSON handler writes for e at now.
func slogLine(t testing.TB, e *accessEntry, now time.Time) string {
	var out bytes.Buffer
	r := slog.NewRecord(now, slog.LevelInfo, "request", 0)
	attrs := accessAttrs(e, now)
	r.AddAttrs(attrs[:]...)
	if err := slog.NewJSONHandler(&out, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestAppendAccessMatchesSlog(t *testing.T) {
	now := time.Date(2026, 11, 30, 8, 4, 37, 123456000, time.UTC)
	for _, e := range []accessEntry{
		{solution: "bench", client: netip.MustParseAddr("127.0.0.1"), method: "GET", proto: "HTTP/1.1",
			host: []byte("bench.localhost"), uri: []byte("/"), status: 200, out: 512, start: now.Add(-1234 * time.Microsecond), userAgent: []byte("wrk")},
		{solution: "s", client: netip.MustParseAddr("2001:db8::1"), method: "POST", proto: "HTTP/2.0",
			host: []byte("s.aim.test:8443"), uri: []byte(`/q?a="b"&c=<d>\e`), status: 413, in: 1 << 20, start: now.Add(-90 * time.Second),
			wake: 1500 * time.Millisecond, userAgent: []byte("tab\there, newline\nthere, \x01\x7f, é, \u2028\u2029"), referer: []byte("bad \xff\xfe utf-8, ok ✓")},
		{solution: "z", method: "HEAD", proto: "HTTP/1.1", start: now, status: 0}, // no client address, no time
		{solution: "tiny", client: netip.MustParseAddr("::ffff:10.0.0.1"), method: "GET", start: now.Add(-time.Microsecond), wake: time.Nanosecond},
		{solution: "huge", method: "GET", start: now.Add(-1e6 * time.Hour)},
	} {
		if got, want := string(appendAccess(nil, now, &e)), slogLine(t, &e, now); got != want {
			t.Errorf("appendAccess:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendAccess(f *testing.F) {
	f.Add("GET", []byte("h.example"), []byte("/p?q=1"), []byte("curl/8"), []byte(""), int64(1500), 200)
	f.Add("X", []byte("\x00\x1f\"\\"), []byte("\xe2\x80\xa8\xff"), []byte("\xed\xa0\x80"), []byte("é"), int64(0), 0)
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, method string, host, uri, ua, ref []byte, micros int64, status int) {
		e := accessEntry{solution: "s", client: netip.MustParseAddr("192.0.2.1"), method: method, proto: "HTTP/1.1",
			host: host, uri: uri, userAgent: ua, referer: ref, status: status, start: now.Add(-time.Duration(micros) * time.Microsecond)}
		if got, want := string(appendAccess(nil, now, &e)), slogLine(t, &e, now); got != want {
			t.Errorf("appendAccess:\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkAccessLogLine(b *testing.B) {
	var out lockedBuffer
	buf := newLogBuffer(&out, 64<<10, time.Hour)
	g := New(Config{AccessLog: slog.New(&accessHandler{JSONHandler: slog.NewJSONHandler(buf, nil), buf: buf})})
	e := accessEntry{solution: "bench", client: netip.MustParseAddr("127.0.0.1"), method: "GET", proto: "HTTP/1.1",
		host: []byte("bench.localhost"), uri: []byte("/"), status: 200, out: 512, start: time.Now(), userAgent: []byte("wrk")}
	b.ReportAllocs()
	for b.Loop() {
		g.logAccess(&e, time.Now())
	}
}
