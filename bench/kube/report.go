package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/aimhub/aim/bench/internal/docsection"
)

const (
	beginMarker = "<!-- bench/kube results: begin (go run ./bench/kube -docs docs/benchmarks.md rewrites this part) -->"
	endMarker   = "<!-- bench/kube results: end -->"
)

// report is every run of one invocation.
type report struct {
	when     time.Time
	cfg      config
	machine  string
	versions []string
	runs     []result
}

func (r report) markdown() string {
	var b strings.Builder
	comp := "one component"
	if r.cfg.components == 2 {
		comp = "two components"
	}
	fmt.Fprintf(&b, "**Result** (%s; %s; %s). %d fake nodes played by kwok; Solutions of %s; %d concurrent creates. "+
		"A shared machine: other engineers' builds, tests and clusters ran at the same time; the load average "+
		"(1, 5, 15 minutes) before and after each run is in the first table.\n\n",
		r.when.Format("2006-01-02"), r.machine, strings.Join(r.versions, ", "), r.cfg.nodes, comp, r.cfg.workers)

	b.WriteString("Time from the first create on:\n\n")
	b.WriteString("| solutions | side | all created | all Deployments exist | all available | **all Ready** | solutions/s | each: create → Ready p50 / p90 / max | **one more** after all Ready | load before → after |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.runs {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | **%s** | %.1f | %s / %s / %s | **%s** | %s → %s |\n",
			thousands(x.solutions), x.side, secs(x.created), secs(x.deployments), secs(x.available), secs(x.ready), x.rate(),
			secs(pct(x.perSolution, 50)), secs(pct(x.perSolution, 90)), secs(pct(x.perSolution, 100)),
			secs(x.oneMore), x.loadBefore, x.loadAfter)
	}

	b.WriteString("\nThe operator during each run (memory from `/proc/<pid>/status` and its `/metrics`, read every second):\n\n")
	b.WriteString("| solutions | side | **peak RSS** (VmHWM) | RSS at the end | **peak Go heap** in use | heap at the end | CPU | API requests (per s) | reconciles | mean reconcile | mean wait in queue | peak queue |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.runs {
		if x.op == nil {
			continue
		}
		o := x.op
		fmt.Fprintf(&b, "| %s | %s | **%s** | %s | **%s** | %s | %s | %.0f (%.1f) | %.0f | %s | %s | %.0f |\n",
			thousands(x.solutions), x.side, mib(o.hwm), mib(o.rssEnd), mib(o.heapPeak), mib(o.heapEnd), secs(o.cpu),
			o.requests, o.requests/x.ready.Seconds(), o.reconciles, ms(o.meanReconcile), secs(o.meanQueueWait), o.peakDepth)
	}

	b.WriteString("\nCPU time each process used during the run (all on the same 2 cores):\n\n")
	b.WriteString("| solutions | side | wall | kube-apiserver | etcd | kube-controller-manager | kube-scheduler | kwok | operator |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, x := range r.runs {
		cpu := map[string]time.Duration{}
		for _, p := range x.cpu {
			cpu[p.name] = p.cpu
		}
		op := "–"
		if x.op != nil {
			op = secs(cpu["operator"])
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", thousands(x.solutions), x.side, secs(x.ready),
			secs(cpu["kube-apiserver"]), secs(cpu["etcd"]), secs(cpu["kube-controller-manager"]), secs(cpu["kube-scheduler"]), secs(cpu["kwok"]), op)
	}

	var ratios []string
	for _, x := range r.runs {
		if x.side == sideFloor {
			continue
		}
		for _, f := range r.runs {
			if f.side == sideFloor && f.solutions == x.solutions && f.ready > 0 {
				ratios = append(ratios, fmt.Sprintf("%s with %s: **%.1f×**", x.side, thousands(x.solutions), x.ready.Seconds()/f.ready.Seconds()))
			}
		}
	}
	if len(ratios) > 0 {
		fmt.Fprintf(&b, "\nTime to all Ready against the floor (the same objects created by hand): %s.\n", strings.Join(ratios, "; "))
	}
	return b.String()
}

// pct is the p-th percentile of sorted xs (nearest rank).
func pct(xs []time.Duration, p int) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := (p*len(xs) + 99) / 100
	return xs[min(max(i-1, 0), len(xs)-1)]
}

func secs(d time.Duration) string {
	switch {
	case d >= 100*time.Second:
		return fmt.Sprintf("%.0f s", d.Seconds())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func ms(d time.Duration) string {
	if d >= time.Second {
		return secs(d)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// replaceSection puts md between the markers in path.
func replaceSection(path, md string) error {
	return docsection.Replace(path, beginMarker, endMarker, md, "bench/kube")
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	osName := runtime.GOOS
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (%s)", osName, runtime.NumCPU(), model)
}

// versions names what ran: Kubernetes, etcd, kwok, Go and aim's commit.
func versions(ctx context.Context, c config) []string {
	first := func(name string, args ...string) string {
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			return name + " (version unknown)"
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	v := []string{
		first(c.kubeBin+"/kube-apiserver", "--version"),
		first(c.etcdBin, "--version"),
		"kwok " + kwokVersion,
		runtime.Version(),
	}
	if rev, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		s := "aim at " + strings.TrimSpace(string(rev))
		if out, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "internal/operator", "api", "cmd", "internal/cli").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
			s += " with uncommitted changes to the operator"
		}
		v = append(v, s)
	}
	return v
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench/kube: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
