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
	fmt.Fprintf(w, "Load tools pinned with `taskset -c %s`, %d thread(s); wrk %d connections, h2load %d connections × %d streams, %d concurrent new TLS connections; Host `%s`; %s warm-up per side and case, then %d rounds of %s per side, the order rotating each round and reversed every other one; backend body %d bytes. CPU is the proxy's user+system time over the round per request.\n\n",
		c.load.CPUs, c.load.Threads, c.load.Connections, c.h2.Clients, c.h2.Streams, c.tlsConns, c.load.Host, c.warmup, c.rounds, c.duration, c.bodyBytes)

	fmt.Fprintf(w, "| case | aim req/s | faster peer | its req/s | ratio (of the medians) | p50 ratio | p99 ratio | CPU/req ratio | target |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.phases {
		b := p.fasterPeer()
		fmt.Fprintf(w, "| %s | %.0f | %s | %.0f | **%.2f** | %.2f | %.2f | %.2f | %s |\n", p.name,
			median(rps(p.res[0])), p.sides[b], median(rps(p.res[b])),
			median(rps(p.res[0]))/median(rps(p.res[b])),
			float64(median(p50(p.res[0])))/float64(median(p50(p.res[b]))),
			float64(median(p99(p.res[0])))/float64(median(p99(p.res[b]))),
			float64(median(cpu(p.res[0])))/float64(median(cpu(p.res[b]))),
			p.verdict(0, b))
	}
	fmt.Fprintln(w)
	for _, p := range r.phases {
		p.table(w)
		if len(p.sides) == 4 && len(r.aims) > 1 {
			// Both aims ran in the same rounds, so their ratio needs no
			// correction for the machine's load.
			d := median(p.pairRatios(1, 0)) - 1
			fmt.Fprintf(w, "Throughput with %d solutions against 1 (target: no more than 5%% lower): **%+.1f%%** (median of the rounds' ratios), %s.\n\n",
				r.aims[1].solutions, 100*d, verdict(d >= -0.05))
		}
	}

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

// fasterPeer is the index of the side, not aim's, with the most requests
// per second (the median of its rounds).
func (p phase) fasterPeer() int {
	best := -1
	for i, s := range p.sides {
		if strings.HasPrefix(s, "aim") {
			continue
		}
		if best < 0 || median(rps(p.res[i])) > median(rps(p.res[best])) {
			best = i
		}
	}
	return best
}

func (p phase) table(w io.Writer) {
	fmt.Fprintf(w, "%s (`%s`):\n\n| round |", p.title, p.name)
	for _, s := range p.sides {
		fmt.Fprintf(w, " %s req/s | p50 | p99 | CPU/req |", s)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|---|---|---|", len(p.sides)))
	for i := range p.res[0] {
		fmt.Fprintf(w, "| %d |", i+1)
		for _, rs := range p.res {
			fmt.Fprintf(w, " %.0f | %s | %s | %s |", rs[i].RPS, ms(rs[i].P50), ms(rs[i].P99), us(rs[i].CPU))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| **median** |")
	for _, rs := range p.res {
		fmt.Fprintf(w, " **%.0f** | **%s** | **%s** | **%s** |", median(rps(rs)), ms(median(p50(rs))), ms(median(p99(rs))), us(median(cpu(rs))))
	}
	fmt.Fprintf(w, "\n\n")
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

func cpu(rs []result) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = r.CPU
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
