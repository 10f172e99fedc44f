package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]float64
		err  bool
	}{
		{
			name: "series of one name are added up",
			in: `# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="127.0.0.1:16443",method="GET"} 12
rest_client_requests_total{code="201",host="127.0.0.1:16443",method="PATCH"} 30
go_memstats_heap_inuse_bytes 1.2345e+07
`,
			want: map[string]float64{"rest_client_requests_total": 42, "go_memstats_heap_inuse_bytes": 12345000},
		},
		{
			name: "a label value may hold braces and spaces; a timestamp follows the value",
			in:   `workqueue_depth{name="a } b",controller="solution"} 7 1700000000000` + "\n",
			want: map[string]float64{"workqueue_depth": 7},
		},
		{
			name: "histogram parts are names of their own",
			in: `controller_runtime_reconcile_time_seconds_bucket{le="+Inf"} 4
controller_runtime_reconcile_time_seconds_sum 1.5
controller_runtime_reconcile_time_seconds_count 4
`,
			want: map[string]float64{
				"controller_runtime_reconcile_time_seconds_bucket": 4,
				"controller_runtime_reconcile_time_seconds_sum":    1.5,
				"controller_runtime_reconcile_time_seconds_count":  4,
			},
		},
		{name: "no value", in: "up\n", err: true},
		{name: "unterminated labels", in: `up{a="b" 1` + "\n", err: true},
		{name: "not a number", in: "up one\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMetrics(strings.NewReader(tt.in))
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error: %v", err, tt.err)
			}
			if tt.err {
				return
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestPct(t *testing.T) {
	xs := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name string
		p    int
		want time.Duration
	}{
		{"median", 50, 5},
		{"p90", 90, 9},
		{"max", 100, 10},
		{"min rank", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pct(xs, tt.p); got != tt.want {
				t.Errorf("pct(%d) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
	if got := pct(nil, 50); got != 0 {
		t.Errorf("pct of nothing = %d, want 0", got)
	}
}

// TestMarkdown pins the report's tables; go test ./bench/kube -update
// rewrites testdata/report.md.
func TestMarkdown(t *testing.T) {
	r := report{
		when:     time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
		cfg:      config{nodes: 100, components: 1, workers: 32},
		machine:  "Debian GNU/Linux 12 (bookworm), 2 cores (AMD EPYC)",
		versions: []string{"Kubernetes v1.32.4", "etcd Version: 3.4.23", "kwok v0.7.0", "go1.26.8", "aim at 53b0eaf"},
		runs: []result{
			{
				side: sideAim, solutions: 1000, components: 1, loadBefore: "0.40 3.34 7.00", loadAfter: "1.10 2.00 5.00",
				created: 2 * time.Second, deployments: 380 * time.Second, available: 381 * time.Second, ready: 750 * time.Second,
				perSolution: []time.Duration{300 * time.Second, 500 * time.Second, 749 * time.Second},
				oneMore:     1500 * time.Millisecond,
				op: &opResult{
					hwm: 80 << 20, rssEnd: 75 << 20, heapPeak: 30 << 20, heapEnd: 25 << 20, cpu: 40 * time.Second,
					requests: 15000, reconciles: 2000, meanReconcile: 380 * time.Millisecond, meanQueueWait: 200 * time.Second, peakDepth: 1000,
				},
				cpu: []procCPUTime{{"etcd", 30 * time.Second}, {"kube-apiserver", 120 * time.Second}, {"kube-controller-manager", 40 * time.Second}, {"kube-scheduler", 10 * time.Second}, {"kwok", 5 * time.Second}, {"operator", 40 * time.Second}},
			},
			{
				side: sideFloor, solutions: 1000, components: 1, loadBefore: "1.10 2.00 5.00", loadAfter: "1.50 2.00 4.90",
				created: 25 * time.Second, deployments: 25 * time.Second, available: 60 * time.Second, ready: 60 * time.Second,
				perSolution: []time.Duration{30 * time.Second, 35 * time.Second, 40 * time.Second},
				oneMore:     1200 * time.Millisecond,
				cpu:         []procCPUTime{{"etcd", 10 * time.Second}, {"kube-apiserver", 50 * time.Second}, {"kube-controller-manager", 20 * time.Second}, {"kube-scheduler", 8 * time.Second}, {"kwok", 4 * time.Second}},
			},
		},
	}
	got := r.markdown()
	golden := filepath.Join("testdata", "report.md")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./bench/kube -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the report differs from %s (go test ./bench/kube -update rewrites it):\n%s", golden, got)
	}
}

func TestReplaceSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	doc := "# Benchmarks\n\n" + beginMarker + "\nold\n" + endMarker + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "# Benchmarks\n\n" + beginMarker + "\nnew\n" + endMarker + "\n\nafter\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(path, "new\n"); err == nil {
		t.Error("a file without markers was accepted")
	}
}
