package web

import (
	"errors"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/store"
)

func TestUsageChart(t *testing.T) {
	for _, tc := range []struct {
		name            string
		days            []store.UsageDay
		err             error
		note            string
		bars, rows      int
		total           usageRow
		label, lastTick string
	}{
		{name: "no use", note: "No visits and no API calls in the last 30 days."},
		{name: "only before the 30 days", days: []store.UsageDay{{Day: "2026-02-08", Views: 5}}, note: "No visits"},
		{name: "the store failed", err: errors.New("database is locked"), note: "aim usage hello shows it"},
		{name: "some days", days: []store.UsageDay{{Day: "2026-02-08", Views: 50}, {Day: "2026-02-09", Views: 1, Visitors: 1},
			{Day: "2026-03-01", Errors: 3}, {Day: "2026-03-10", Views: 1000, API: 7, Visitors: 9, Wakes: 2}},
			bars: 2, rows: 3, total: usageRow{Day: "Total", Views: 1001, Visitors: 10, API: 7, Errors: 3, Wakes: 2},
			label: "1001 page views and 7 API calls in all, at most 1000 in a day", lastTick: "Mar 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newUsageChart("hello", now, tc.days, tc.err)
			if tc.note != "" {
				if !strings.Contains(c.Note, tc.note) || c.Days != nil {
					t.Errorf("note %q with %d days drawn, want %q and none", c.Note, len(c.Days), tc.note)
				}
				return
			}
			if c.Note != "" || len(c.Days) != tc.bars || len(c.Rows) != tc.rows || c.Total != tc.total || !strings.Contains(c.Label, tc.label) {
				t.Errorf("chart %+v", c)
			}
			if last := c.Ticks[len(c.Ticks)-1]; last.Label != tc.lastTick || last.Anchor != "end" {
				t.Errorf("the last tick is %+v", last)
			}
			for _, d := range c.Days {
				// A day with one view among a thousand still shows.
				if d.HasViews && d.ViewsH == "0.0" {
					t.Errorf("%s: a bar of no height", d.Title)
				}
			}
		})
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int64]int64{1: 1, 2: 2, 3: 5, 5: 5, 6: 10, 11: 20, 40: 50, 51: 100, 1000: 1000, 1001: 2000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}
