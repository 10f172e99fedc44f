package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aimhub/aim/bench/internal/docsection"
)

// The results in docs/benchmarks.md sit between these markers; -docs
// rewrites what is between them and nothing else.
const (
	beginMarker = "<!-- bench/gateway results: begin (go run ./bench/gateway -docs docs/benchmarks.md rewrites this part) -->"
	endMarker   = "<!-- bench/gateway results: end -->"
)

func (r report) write(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "**Result** (%s; %s; %s).\n", r.when.Format("2006-01-02"), r.machine, strings.Join(r.versions, ", "))
	fmt.Fprintf(w, "wrk pinned with `taskset -c %s`, %d thread(s), %d connections, Host `%s`; %s warm-up per side and phase, then %d rounds of %s per side, the order rotating each round; backend body %d bytes.\n\n",
		c.load.CPUs, c.load.Threads, c.load.Connections, c.load.Host, c.warmup, c.rounds, c.duration, c.bodyBytes)

	r.plain.table(w)
	if r.logged != nil {
		r.logged.table(w)
	}

	fmt.Fprintf(w, "| ratio | requests/s (of the medians) | requests/s (median of the rounds' ratios) | p50 | p99 |\n|---|---|---|---|---|\n")
	ng := len(r.plain.sides) - 1
	r.plain.ratio(w, 0, ng, "")
	if len(r.aims) > 1 {
		r.plain.ratio(w, 1, ng, "")
		r.plain.ratio(w, 1, 0, "")
	}
	if r.logged != nil {
		r.logged.ratio(w, 0, 1, ", access logs on")
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "Target: aim/nginx requests/s at least 1.00 and aim's p99 no worse than nginx's: %s", r.plain.verdict(0, ng))
	if len(r.aims) > 1 {
		fmt.Fprintf(w, "; with %d solutions, %s", r.aims[1].solutions, r.plain.verdict(1, ng))
	}
	fmt.Fprintf(w, ".")
	if len(r.aims) > 1 {
		// Both aims ran in the same rounds, so their ratio needs no
		// correction for the machine's load.
		d := median(r.plain.pairRatios(1, 0)) - 1
		fmt.Fprintf(w, " Throughput with %d solutions against 1 (target: no more than 5%% lower): **%+.1f%%** (median of the rounds' ratios), %s.",
			r.aims[1].solutions, 100*d, verdict(d >= -0.05))
	}
	fmt.Fprintf(w, "\n\n")

	fmt.Fprintf(w, "| aim |")
	for _, in := range r.aims {
		fmt.Fprintf(w, " %d solution(s) |", in.solutions)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(r.aims)))
	row := func(name string, f func(in instance) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, in := range r.aims {
			fmt.Fprintf(w, " %s |", f(in))
		}
		fmt.Fprintln(w)
	}
	row("start → /healthz (every solution adopted)", func(in instance) string { return ms(in.startup) })
	row("start → the awake solution answers", func(in instance) string { return ms(in.ready) })
	row("CPU when idle (share of one core, over 5 s)", func(in instance) string { return fmt.Sprintf("%.1f%%", 100*in.idleCPU) })
	row("RSS after start (VmRSS)", func(in instance) string { return mib(in.idle.RSS) })
	row("Go heap in use after start", func(in instance) string { return mib(in.idle.HeapInuse) })
	row("peak RSS after the rounds (VmHWM)", func(in instance) string { return mib(in.peak.HWM) })
	fmt.Fprintln(w)
}

func (p phase) table(w io.Writer) {
	fmt.Fprintf(w, "%s:\n\n| round |", p.title)
	for _, s := range p.sides {
		fmt.Fprintf(w, " %s req/s | p50 | p99 |", s)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|---|---|", len(p.sides)))
	for i := range p.res[0] {
		fmt.Fprintf(w, "| %d |", i+1)
		for _, rs := range p.res {
			fmt.Fprintf(w, " %.0f | %s | %s |", rs[i].RPS, ms(rs[i].P50), ms(rs[i].P99))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| **median** |")
	for _, rs := range p.res {
		fmt.Fprintf(w, " **%.0f** | **%s** | **%s** |", median(rps(rs)), ms(median(p50(rs))), ms(median(p99(rs))))
	}
	fmt.Fprintf(w, "\n\n")
}

// ratio writes the row comparing side a with side b.
func (p phase) ratio(w io.Writer, a, b int, note string) {
	fmt.Fprintf(w, "| %s / %s%s | **%.2f** | %.2f | %.2f | %.2f |\n", p.sides[a], p.sides[b], note,
		median(rps(p.res[a]))/median(rps(p.res[b])), median(p.pairRatios(a, b)),
		float64(median(p50(p.res[a])))/float64(median(p50(p.res[b]))),
		float64(median(p99(p.res[a])))/float64(median(p99(p.res[b]))))
}

func (p phase) verdict(a, b int) string {
	return verdict(median(rps(p.res[a])) >= median(rps(p.res[b])) && median(p99(p.res[a])) <= median(p99(p.res[b])))
}

// pairRatios are side a's requests per second over side b's, round by
// round: within a round the runs are back to back, so a slower drift in
// the machine's load cancels.
func (p phase) pairRatios(a, b int) []float64 {
	out := make([]float64, len(p.res[a]))
	for i := range out {
		out[i] = p.res[a][i].RPS / p.res[b][i].RPS
	}
	return out
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

func rps(rs []result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = r.RPS
	}
	return out
}

func p50(rs []result) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.P50
	}
	return out
}

func p99(rs []result) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.P99
	}
	return out
}

// replaceSection puts md between the markers in path.
func replaceSection(path, md string) error {
	return docsection.Replace(path, beginMarker, endMarker, md, "bench/gateway")
}
