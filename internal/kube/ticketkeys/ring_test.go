package ticketkeys

import (
	"testing"
	"time"
)

func TestAdvance(t *testing.T) {
	const rot, life = 12 * time.Hour, 36 * time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := func(h int) key { return key{Start: t0.Add(time.Duration(h) * time.Hour), Key: make([]byte, 32)} }
	tests := []struct {
		name string
		ks   []key
		at   int // hours after t0
		// starts are the ring's keys' starts, newest first, in hours.
		starts []int
		due    bool
	}{
		{"empty: a current key and the next", nil, 0, []int{12, 0}, true},
		{"fresh: nothing to do", []key{k(12), k(0)}, 5, []int{12, 0}, false},
		{"the next began: a new next", []key{k(12), k(0)}, 12, []int{24, 12, 0}, true},
		{"a key past its lifetime goes", []key{k(36), k(24), k(12), k(0)}, 36, []int{48, 36, 24, 12}, true},
		{"just within its lifetime it stays", []key{k(36), k(24), k(12), k(0)}, 35, []int{36, 24, 12, 0}, false},
		{"no replica ran for days: all new", []key{k(12), k(0)}, 100, []int{112, 100}, true},
		{"out of order: sorted", []key{k(0), k(12)}, 1, []int{12, 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, due := advance(tt.ks, t0.Add(time.Duration(tt.at)*time.Hour), rot, life)
			var starts []int
			for _, g := range got {
				starts = append(starts, int(g.Start.Sub(t0)/time.Hour))
				if len(g.Key) != 32 {
					t.Errorf("a key of %d bytes", len(g.Key))
				}
			}
			if due != tt.due || len(starts) != len(tt.starts) {
				t.Fatalf("starts %v, due %v; want %v, %v", starts, due, tt.starts, tt.due)
			}
			for i := range starts {
				if starts[i] != tt.starts[i] {
					t.Fatalf("starts %v; want %v", starts, tt.starts)
				}
			}
		})
	}
}

func TestDecode(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		ok         bool
	}{
		{"empty", "", false},
		{"not JSON", "{", false},
		{"a short key", `{"keys":[{"start":"2026-01-01T00:00:00Z","key":"AAAA"}]}`, false},
		{"no start", `{"keys":[{"key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`, false},
		{"good", `{"keys":[{"start":"2026-01-01T00:00:00Z","key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([]byte(tt.data))
			if (err == nil) != tt.ok {
				t.Errorf("decode(%q): %v", tt.data, err)
			}
		})
	}
}
