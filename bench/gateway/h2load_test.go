package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseH2load(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    result
		failure string
		err     string
	}{
		{name: "every answer 2xx", file: "h2load-ok.txt", want: result{RPS: 3507, Requests: 7014}},
		{name: "4xx answers fail the run", file: "h2load-4xx.txt",
			want:    result{RPS: 14178, Requests: 14178, Non2xx: 14178, Errors: "14178 failed, 0 errored, 0 timeout"},
			failure: "14178 of 14178 responses were not 2xx or 3xx"},
		{name: "nothing listening", file: "h2load-refused.txt",
			want: result{Errors: "10 failed, 10 errored, 0 timeout"}, failure: "socket errors: 10 failed, 10 errored, 0 timeout"},
		{name: "cut short", file: "h2load-cut.txt", err: "did h2load run to its end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseH2load(string(b))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			f := got.failed()
			if (f == nil) != (tt.failure == "") || (f != nil && f.Error() != tt.failure) {
				t.Errorf("failed() = %v, want %q", f, tt.failure)
			}
		})
	}
}

func TestReadH2Log(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "h2load-log.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lat, err := readH2Log(f)
	if err != nil {
		t.Fatal(err)
	}
	if p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99); p50 != 864*time.Microsecond || p99 != 892*time.Microsecond {
		t.Errorf("p50 %s, p99 %s; want 864µs, 892µs (nearest rank of 5)", p50, p99)
	}
	if _, err := readH2Log(strings.NewReader("1796316829081026\t200\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a line of two columns: error %v, want one naming line 1", err)
	}
	if _, err := readH2Log(strings.NewReader("")); err == nil {
		t.Error("an empty log: no error")
	}
}

func TestParseTLSLoad(t *testing.T) {
	tests := []struct {
		file    string
		want    result
		resumed int64
		err     string
	}{
		{file: "tlsload-ok.txt", want: result{RPS: 750.34, Requests: 1509, P50: 16445 * time.Microsecond, P99: 88549 * time.Microsecond}, resumed: 1493},
		{file: "tlsload-non2xx.txt", want: result{RPS: 527.83, Requests: 1078, Non2xx: 1078, P50: 21957 * time.Microsecond, P99: 102921 * time.Microsecond,
			Errors: "36 errors, the first: dial tcp 127.0.0.1:38635: i/o timeout"}, resumed: 1062},
		{file: "tlsload-refused.txt", want: result{Errors: "23365 errors, the first: after 1ms: dial tcp 127.0.0.1:1: connect: connection refused"}},
		{file: "h2load-ok.txt", err: `no "tlsload:"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, resumed, err := parseTLSLoad(string(b))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || resumed != tt.resumed {
				t.Errorf("got %+v, %d resumed\nwant %+v, %d resumed", got, resumed, tt.want, tt.resumed)
			}
		})
	}
}

// TestTLSLoadDrive runs the client against a real TLS server and reads
// its own report back: what drive writes, parseTLSLoad reads.
func TestTLSLoadDrive(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.EnableHTTP2 = false
	// The connections cut at the end of the run are not the test's news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	for _, resume := range []bool{false, true} {
		var out bytes.Buffer
		tl := tlsLoad{Addr: srv.Listener.Addr().String(), ServerName: "bench.localhost", Path: "/", Resume: resume, Workers: 2, Duration: 300 * time.Millisecond}
		if err := tl.drive(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		r, resumed, err := parseTLSLoad(out.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if err := r.failed(); err != nil {
			t.Fatalf("resume %v: %v\n%s", resume, err, out.String())
		}
		// Each worker's first connection has no ticket to resume.
		if resume && resumed != r.Requests-2 || !resume && resumed != 0 {
			t.Errorf("resume %v: %d of %d connections resumed\n%s", resume, resumed, r.Requests, out.String())
		}
	}
}

func TestParseStat(t *testing.T) {
	pid, st, err := parseStat("4242 (nginx: worker) process) S 4241 4241 4241 0 -1 4194624 120 0 0 0 37 12 0 0 20 0 1 0 100 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if pid != 4242 || st.ppid != 4241 || st.ticks != 49 {
		t.Errorf("pid %d, %+v; want 4242, ppid 4241, 49 ticks", pid, st)
	}
	if _, _, err := parseStat("4242 (short) S 1"); err == nil {
		t.Error("a short line: no error")
	}
}

func TestSelectCases(t *testing.T) {
	all, err := selectCases("all", true)
	if err != nil || len(all) != len(allCases) {
		t.Fatalf("all: %d cases, %v", len(all), err)
	}
	nolog, _ := selectCases("all", false)
	for _, c := range nolog {
		if c.log {
			t.Errorf("all without access logs has %s", c.name)
		}
	}
	got, err := selectCases("h2, tls-resume", false)
	if err != nil || len(got) != 2 || got[0].name != "h2" || !got[1].resume {
		t.Errorf("h2, tls-resume: %+v, %v", got, err)
	}
	if _, err := selectCases("http3", true); err == nil || !strings.Contains(err.Error(), `no case "http3"`) {
		t.Errorf("http3: error %v", err)
	}
}
