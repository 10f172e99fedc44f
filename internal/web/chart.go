package web

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aimhub/aim/internal/store"
)

// A solution's use per day as the provider's page draws it: an inline
// SVG of page views and API calls (no script, no image request), with
// the same numbers in a table for screen readers and text browsers.

// chartDays is how many days the chart covers, today included.
const chartDays = 30

// The chart's geometry, in the SVG's own units; it scales to its box.
const (
	chartWidth  = 640
	chartHeight = 164
	plotLeft    = 40  // room for the scale's labels
	plotTop     = 10  // room for the top label
	plotBottom  = 140 // the base line; the days' labels below it
	slotWidth   = (chartWidth - plotLeft) / chartDays
	barWidth    = 8
)

// usageChart is what me.html draws of one solution's use.
type usageChart struct {
	// Note, when set, stands in for the chart: why there is none.
	Note string
	// Label is the chart's accessible name, a summary of it.
	Label         string
	Width, Height int
	Base          int // the base line's y
	Days          []chartDay
	Grid          []chartLine
	Ticks         []chartTick
	// Rows are the days with any use, newest first; Total adds them up.
	Rows  []usageRow
	Total usageRow
}

// chartDay is the two bars of a day with some use, views then API
// calls; a bar without Has is not drawn.
type chartDay struct {
	Title                  string
	ViewsX, ViewsY, ViewsH string
	APIX, APIY, APIH       string
	HasViews, HasAPI       bool
}

type chartLine struct {
	Y     string
	Label string
}

type chartTick struct {
	X, Anchor string // Anchor is the label's text-anchor
	Label     string
}

// usageRow is one line of the table beside the chart.
type usageRow struct {
	Day                                 string
	Views, Visitors, API, Errors, Wakes int64
}

// day is t's UTC day, as the store keys usage.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// newUsageChart lays out the chartDays up to now's day of solution's
// days (the store's, oldest first); readErr is why they could not be
// read.
func newUsageChart(solution string, now time.Time, days []store.UsageDay, readErr error) usageChart {
	if readErr != nil {
		return usageChart{Note: "The use could not be read just now; aim usage " + solution + " shows it."}
	}
	byDay := map[string]store.UsageDay{}
	for _, d := range days {
		byDay[d.Day] = d
	}
	first := now.UTC().AddDate(0, 0, 1-chartDays)
	c := usageChart{Width: chartWidth, Height: chartHeight, Base: plotBottom}
	var peak int64
	for i := range chartDays {
		d := byDay[day(first.AddDate(0, 0, i))]
		peak = max(peak, d.Views, d.API)
	}
	if peak == 0 {
		c.Note = "No visits and no API calls in the last " + strconv.Itoa(chartDays) + " days."
		return c
	}
	top := niceCeil(peak)
	height := func(n int64) float64 {
		h := float64(n) / float64(top) * (plotBottom - plotTop)
		if n > 0 && h < 1 {
			h = 1 // a day with some use shows
		}
		return h
	}
	for i := range chartDays {
		t := first.AddDate(0, 0, i)
		d := byDay[day(t)]
		x := float64(plotLeft + i*slotWidth + 1)
		if d.Views > 0 || d.API > 0 {
			vh, ah := height(d.Views), height(d.API)
			c.Days = append(c.Days, chartDay{
				Title:  fmt.Sprintf("%s: %s, %s", day(t), plural(d.Views, "page view"), plural(d.API, "API call")),
				ViewsX: num(x), ViewsY: num(plotBottom - vh), ViewsH: num(vh), HasViews: d.Views > 0,
				APIX: num(x + barWidth + 1), APIY: num(plotBottom - ah), APIH: num(ah), HasAPI: d.API > 0,
			})
		}
		// A label a week, and today's, a few days from the last.
		switch {
		case i == chartDays-1: // ends at the chart's edge
			c.Ticks = append(c.Ticks, chartTick{X: num(chartWidth), Anchor: "end", Label: t.Format("Jan 2")})
		case i%7 == 0 && i < chartDays-5:
			c.Ticks = append(c.Ticks, chartTick{X: num(x + barWidth), Anchor: "middle", Label: t.Format("Jan 2")})
		}
	}
	for _, v := range []int64{top, top / 2} {
		if v > 0 {
			c.Grid = append(c.Grid, chartLine{Y: num(plotBottom - height(v)), Label: strconv.FormatInt(v, 10)})
		}
	}
	for i := len(days) - 1; i >= 0; i-- {
		d := days[i]
		if d.Day < day(first) || d.Views+d.API+d.Errors+d.Wakes == 0 {
			continue
		}
		c.Rows = append(c.Rows, usageRow{Day: d.Day, Views: d.Views, Visitors: d.Visitors, API: d.API, Errors: d.Errors, Wakes: d.Wakes})
		c.Total = usageRow{Day: "Total", Views: c.Total.Views + d.Views, Visitors: c.Total.Visitors + d.Visitors,
			API: c.Total.API + d.API, Errors: c.Total.Errors + d.Errors, Wakes: c.Total.Wakes + d.Wakes}
	}
	c.Label = fmt.Sprintf("Bar chart of %s's page views and API calls per day from %s to %s: %s and %s in all, at most %s in a day. The table beside it lists the days.",
		solution, first.Format("Jan 2"), now.UTC().Format("Jan 2"), plural(c.Total.Views, "page view"), plural(c.Total.API, "API call"), strconv.FormatInt(peak, 10))
	return c
}

// niceCeil is the scale's top: the least of 1, 2, 5, 10, 20, 50, … that
// is at least n.
func niceCeil(n int64) int64 {
	for m := int64(1); ; m *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if f*m >= n {
				return f * m
			}
		}
	}
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.FormatInt(n, 10) + " " + what + "s"
}
