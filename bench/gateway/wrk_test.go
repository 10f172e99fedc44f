package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    result
		failure string // what failed() says, empty when the run counts
		err     string // what parseWrk says, empty when it reads the report
	}{
		{name: "every answer 2xx", file: "ok.txt",
			want: result{RPS: 667.32, P50: 4720 * time.Microsecond, P99: 54140 * time.Microsecond, Requests: 670}},
		{name: "404s are counted and fail the run", file: "non2xx.txt",
			want:    result{RPS: 820.46, P50: 3580 * time.Microsecond, P99: 82960 * time.Microsecond, Requests: 821, Non2xx: 821},
			failure: "821 of 821 responses were not 2xx or 3xx"},
		{name: "microseconds, seconds and socket errors", file: "socket-errors.txt",
			want: result{RPS: 40119.87, P50: 790 * time.Microsecond, P99: 1200 * time.Millisecond, Requests: 401200,
				Errors: "connect 0, read 3, write 0, timeout 2"},
			failure: "socket errors: connect 0, read 3, write 0, timeout 2"},
		{name: "wrk run without --latency", file: "no-latency.txt", err: "no latency distribution"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseWrk(string(b))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Float parsing of "4.72ms" may be off by a nanosecond.
			for _, d := range []*time.Duration{&got.P50, &got.P99} {
				*d = d.Round(time.Microsecond)
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

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"odd", []float64{3, 1, 2}, 2},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"one", []float64{7}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
