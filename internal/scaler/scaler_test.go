package scaler

import (
	"context"
	"slices"
	"testing"
	"time"
)

type fakeSols []Awake

func (f fakeSols) Awake() []Awake                      { return f }
func (f fakeSols) Sleep(context.Context, string) error { return nil }

type act struct {
	last     time.Time
	inflight int64
}

type fakeAct map[string]act

func (f fakeAct) Activity(name string) (time.Time, int64, bool) {
	a, ok := f[name]
	return a.last, a.inflight, ok
}

func TestIdle(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sol  Awake
		act  act
		want bool
	}{
		{"busy", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-10 * time.Second)}, false},
		{"idle past timeout", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-61 * time.Second)}, true},
		{"exactly at timeout", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-time.Minute)}, true},
		{"min replicas never sleep", Awake{Name: "s", Idle: time.Minute, Min: 1}, act{last: now.Add(-time.Hour)}, false},
		{"open connection keeps awake", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-time.Hour), inflight: 1}, false},
		{"open connection past the cap", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-5 * time.Hour), inflight: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Now: func() time.Time { return now }}, fakeSols{tc.sol}, fakeAct{"s": tc.act})
			got := slices.Contains(s.Idle(), "s")
			if got != tc.want {
				t.Errorf("idle = %v, want %v", got, tc.want)
			}
		})
	}
}
