package store

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		k1, err := s.UsageKey(ctx, "2026-12-01")
		if err != nil || len(k1) != 32 {
			t.Fatalf("%x %v", k1, err)
		}
		if k, _ := s.UsageKey(ctx, "2026-12-01"); !bytes.Equal(k, k1) {
			t.Error("the day's key changed")
		}
		k2, _ := s.UsageKey(ctx, "2026-12-02")
		if bytes.Equal(k1, k2) {
			t.Error("two days, one key")
		}
		last := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
		add := func(day string, c UsageCounts, hs ...string) {
			t.Helper()
			var b [][]byte
			for _, h := range hs {
				b = append(b, []byte(h))
			}
			if err := s.AddUsage(ctx, day, "shop", c, b); err != nil {
				t.Fatal(err)
			}
		}
		add("2026-12-01", UsageCounts{Views: 2, API: 3, Errors: 1, Wakes: 1, WakeMillis: 400, LastVisit: last}, "a", "b")
		add("2026-12-01", UsageCounts{Views: 1, LastVisit: last - 1000}, "b", "c") // b again: counted once
		add("2026-12-02", UsageCounts{API: 5, LastVisit: last + 86400000}, "a")
		days, err := s.Usage(ctx, "shop", "2026-11-01")
		if err != nil || len(days) != 2 {
			t.Fatalf("%+v %v", days, err)
		}
		d := days[0]
		if d.Day != "2026-12-01" || d.Views != 3 || d.API != 3 || d.Errors != 1 || d.Wakes != 1 || d.WakeTime != 400*time.Millisecond ||
			d.Visitors != 3 || d.LastVisit.UnixMilli() != last {
			t.Errorf("day 1: %+v", d)
		}
		// Closing the first day keeps its count and drops its hashes and key.
		if err := s.CloseUsageDays(ctx, "2026-12-02"); err != nil {
			t.Fatal(err)
		}
		days, _ = s.Usage(ctx, "shop", "2026-11-01")
		if days[0].Visitors != 3 || days[1].Visitors != 1 {
			t.Errorf("after closing: %+v", days)
		}
		var n int
		_ = s.queryRow(ctx, `SELECT COUNT(*) FROM usage_visitors WHERE day = '2026-12-01'`).Scan(&n)
		var keys int
		_ = s.queryRow(ctx, `SELECT COUNT(*) FROM usage_keys WHERE day = '2026-12-01'`).Scan(&keys)
		if n != 0 || keys != 0 {
			t.Errorf("closed day keeps %d hashes and %d keys", n, keys)
		}
		if err := s.CloseUsageDays(ctx, "2026-12-02"); err != nil {
			t.Fatal(err)
		}
		if days, _ = s.Usage(ctx, "shop", "2026-11-01"); days[0].Visitors != 3 {
			t.Errorf("closing twice counted again: %+v", days[0])
		}
		if days, _ = s.Usage(ctx, "shop", "2026-12-02"); len(days) != 1 {
			t.Errorf("since: %+v", days)
		}
	})
}

func TestUsageTotals(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, u := range []struct {
			day, sol   string
			views, api int64
		}{
			{"2026-11-30", "shop", 100, 100}, // before since: not counted
			{"2026-12-01", "shop", 2, 3},
			{"2026-12-02", "shop", 1, 0},
			{"2026-12-02", "maps", 0, 7},
			{"2026-12-02", "idle", 0, 0},
		} {
			if err := s.AddUsage(ctx, u.day, u.sol, UsageCounts{Views: u.views, API: u.api, Errors: 50}, nil); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.UsageTotals(ctx, "2026-12-01")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["shop"] != 6 || got["maps"] != 7 {
			t.Errorf("totals %v, want shop 6 and maps 7 (views and API calls, errors not, idle absent)", got)
		}
	})
}
