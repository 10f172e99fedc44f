package router

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNextReport(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	s := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	const maxConn = time.Hour
	tests := []struct {
		name       string
		now, last  time.Time
		inflight   int64
		act        activity
		annotation time.Time
		want       time.Time // zero: nothing to write
	}{
		{name: "a request since the last report is written as its time",
			now: s(10), last: s(8), act: activity{baseline: s(0), reported: s(5)}, annotation: s(5), want: s(8)},
		{name: "nothing new",
			now: s(10), last: s(5), act: activity{baseline: s(0), reported: s(5)}, annotation: s(5)},
		{name: "a restarted replica reports nothing until a request comes: the route's creation is no request",
			now: s(10), last: s(3), act: activity{baseline: s(3)}},
		{name: "turning ready (another replica woke it) is no request",
			now: s(10), last: s(9), act: activity{baseline: s(9), reported: s(1)}, annotation: s(1)},
		{name: "another replica wrote a later time: the annotation never goes back",
			now: s(10), last: s(8), act: activity{baseline: s(0), reported: s(5)}, annotation: s(9)},
		{name: "another replica wrote this very time",
			now: s(10), last: s(8), act: activity{baseline: s(0)}, annotation: s(8)},
		{name: "open connections keep it awake: written as now",
			now: s(100), last: s(8), inflight: 2, act: activity{baseline: s(0), reported: s(95)}, annotation: s(95), want: s(100)},
		{name: "open connections, but for longer than the cap: only the last request counts",
			now: s(8).Add(maxConn), last: s(8), inflight: 1, act: activity{baseline: s(0), reported: s(8)}, annotation: s(8)},
		{name: "a connection that outlived a restart keeps it awake",
			now: s(10), last: s(3), inflight: 1, act: activity{baseline: s(3)}, want: s(10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := nextReport(tt.now, tt.last, tt.inflight, tt.act, tt.annotation, maxConn)
			if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
				t.Errorf("nextReport = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}

func TestActivityPatchIsConditional(t *testing.T) {
	b, err := activityPatch(time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)), "42")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Metadata struct {
			ResourceVersion string            `json:"resourceVersion"`
			Annotations     map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if p.Metadata.ResourceVersion != "42" {
		t.Errorf("resourceVersion %q: the patch must be conditional", p.Metadata.ResourceVersion)
	}
	if got, want := p.Metadata.Annotations["aim.dev/last-active"], "2030-01-02T02:04:05.0000006Z"; got != want {
		t.Errorf("annotation %q, want %q (RFC 3339 in UTC, which the operator parses)", got, want)
	}
}
