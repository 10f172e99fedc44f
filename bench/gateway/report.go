package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
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
	fmt.Fprintf(w, "wrk pinned with `taskset -c %s`, %d thread(s), %d connections, Host `%s`; %s warm-up per proxy and phase, then %d rounds of %s each, alternating which proxy goes first; backend body %d bytes.\n\n",
		c.load.CPUs, c.load.Threads, c.load.Connections, c.load.Host, c.warmup, c.rounds, c.duration, c.bodyBytes)

	r.one.table(w, "aim with 1 solution")
	if r.logged != nil {
		r.logged.table(w, "aim with 1 solution, access logs on for both (aim `--access-log FILE`, nginx a JSON `log_format` with the same fields)")
	}
	if r.many != nil {
		r.many.table(w, fmt.Sprintf("aim with %d solutions (%d sleeping, 1 awake)", r.many.solutions, r.many.solutions-1))
	}

	fmt.Fprintf(w, "| aim/nginx (medians) | requests/s | p50 | p99 |\n|---|---|---|---|\n")
	ratios := func(name string, p phase) {
		fmt.Fprintf(w, "| %s | **%.2f** | %.2f | %.2f |\n", name,
			median(rps(p.aim))/median(rps(p.nginx)),
			float64(median(p50(p.aim)))/float64(median(p50(p.nginx))),
			float64(median(p99(p.aim)))/float64(median(p99(p.nginx))))
	}
	ratios("1 solution", r.one)
	if r.logged != nil {
		ratios("1 solution, access logs on", *r.logged)
	}
	if r.many != nil {
		ratios(fmt.Sprintf("%d solutions", r.many.solutions), *r.many)
	}
	fmt.Fprintln(w)
	one := median(rps(r.one.aim))
	fmt.Fprintf(w, "Target: aim/nginx requests/s at least 1.00 and aim's p99 no worse than nginx's. ")
	fmt.Fprintf(w, "With 1 solution: %s.", verdict(one/median(rps(r.one.nginx)) >= 1 && median(p99(r.one.aim)) <= median(p99(r.one.nginx))))
	if r.many != nil {
		m := *r.many
		many := median(rps(m.aim))
		// The ratios to nginx cancel a change in the machine's load
		// between the phases; the direct comparison does not.
		rel := (many / median(rps(m.nginx))) / (one / median(rps(r.one.nginx)))
		fmt.Fprintf(w, " With %d solutions: %s.\n\n", m.solutions, verdict(many/median(rps(m.nginx)) >= 1 && median(p99(m.aim)) <= median(p99(m.nginx))))
		fmt.Fprintf(w, "Throughput with %d solutions against 1 (target: within 5%%): aim's median %.0f against %.0f requests/s, **%+.1f%%**; "+
			"measured against nginx in the same phase (which cancels a change in the machine's load between phases), **%+.1f%%**.\n\n",
			m.solutions, many, one, 100*(many/one-1), 100*(rel-1))
	} else {
		fmt.Fprintf(w, "\n\n")
	}

	fmt.Fprintf(w, "| aim | 1 solution |")
	if r.many != nil {
		fmt.Fprintf(w, " %d solutions |", r.many.solutions)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", map[bool]string{true: "---|", false: ""}[r.many != nil])
	row := func(name string, f func(p phase) string) {
		fmt.Fprintf(w, "| %s | %s |", name, f(r.one))
		if r.many != nil {
			fmt.Fprintf(w, " %s |", f(*r.many))
		}
		fmt.Fprintln(w)
	}
	row("start → /healthz (every solution adopted)", func(p phase) string { return ms(p.startup) })
	row("start → the awake solution answers", func(p phase) string { return ms(p.ready) })
	row("RSS after start (VmRSS)", func(p phase) string { return mib(p.idle.RSS) })
	row("Go heap in use after start", func(p phase) string { return mib(p.idle.HeapInuse) })
	row("peak RSS after the rounds (VmHWM)", func(p phase) string { return mib(p.peak.HWM) })
	fmt.Fprintln(w)
}

func (p phase) table(w io.Writer, title string) {
	fmt.Fprintf(w, "%s, against nginx in the same phase:\n\n", title)
	fmt.Fprintf(w, "| round | aim req/s | aim p50 | aim p99 | nginx req/s | nginx p50 | nginx p99 |\n|---|---|---|---|---|---|---|\n")
	for i := range p.aim {
		a, n := p.aim[i], p.nginx[i]
		fmt.Fprintf(w, "| %d | %.0f | %s | %s | %.0f | %s | %s |\n", i+1, a.RPS, ms(a.P50), ms(a.P99), n.RPS, ms(n.P50), ms(n.P99))
	}
	fmt.Fprintf(w, "| **median** | **%.0f** | **%s** | **%s** | **%.0f** | **%s** | **%s** |\n\n",
		median(rps(p.aim)), ms(median(p50(p.aim))), ms(median(p99(p.aim))),
		median(rps(p.nginx)), ms(median(p50(p.nginx))), ms(median(p99(p.nginx))))
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
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(beginMarker))
	j := bytes.Index(b, []byte(endMarker))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no bench/gateway markers (%q … %q) to write the results between", path, beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(beginMarker)])
	out.WriteString("\n" + md)
	out.Write(b[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
