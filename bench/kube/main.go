// Command kube measures how fast aim's operator brings many Solutions to
// Ready on a simulated cluster, and what memory it takes to do so.
//
// Each run starts a cluster of its own in a temporary directory: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (the
// binaries test/cluster/build.sh caches), and kwok, which plays the
// kubelets of 100 fake nodes (heartbeats, and pods that turn Running and
// Ready as soon as they are bound). `aim operator` runs as a process of
// its own, as the chart's service account with the chart's RBAC, so that
// its memory can be read from /proc. The harness creates N Solutions as
// fast as the API server takes them and watches them until every one
// reports Ready.
//
// Two sides, each on a fresh cluster:
//
//   - floor: no operator; the harness creates the very objects the
//     operator renders (operator.Render) itself, and waits until every
//     Deployment is available. What the cluster alone needs.
//   - aim: `aim operator`, the built binary, with the chart's flags.
//
// Run it from the repository root: go run ./bench/kube -aim bin/aim
// (make bench-kube). It needs etcd (Debian's etcd-server), the
// Kubernetes binaries of test/cluster/build.sh, and kwok (installed with
// go install from the Go module proxy when missing); no Docker, no root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// kwokVersion is the kwok release the harness installs when -kwok is
// missing.
const kwokVersion = "v0.7.0"

type config struct {
	aimBin     string
	sizes      []int
	sides      []string
	nodes      int
	components int
	workers    int
	port       int
	kubeBin    string
	etcdBin    string
	kwokBin    string
	clusterQPS int
	timeout    time.Duration
	docs       string
	keep       bool
	stateDir   string
	profile    string
}

func main() {
	home, _ := os.UserHomeDir()
	var c config
	var sizes, sides string
	flag.StringVar(&c.aimBin, "aim", "bin/aim", "the aim binary whose operator is measured")
	flag.StringVar(&sizes, "solutions", envString("KUBEBENCH_SOLUTIONS", "1000,5000"), "numbers of Solutions, one run per number and side (env KUBEBENCH_SOLUTIONS)")
	flag.StringVar(&sides, "sides", envString("KUBEBENCH_SIDES", "floor,aim"), "what to measure: floor (the objects the operator renders, created by hand, no operator), aim (the aim binary's operator) (env KUBEBENCH_SIDES)")
	flag.IntVar(&c.nodes, "nodes", 100, "fake nodes kwok plays")
	flag.IntVar(&c.components, "components", 1, "components per Solution (1 or 2)")
	flag.IntVar(&c.workers, "workers", 32, "concurrent creates by the harness")
	flag.IntVar(&c.port, "port", 16443, "kube-apiserver's port (test/cluster's is 6443)")
	flag.StringVar(&c.kubeBin, "kube-bin", filepath.Join(home, ".cache/aim/kube/kubernetes-v1.32.4"), "directory of kube-apiserver, kube-controller-manager and kube-scheduler (test/cluster/build.sh fills it)")
	flag.StringVar(&c.etcdBin, "etcd", "/usr/bin/etcd", "etcd binary (Debian's etcd-server)")
	flag.StringVar(&c.kwokBin, "kwok", filepath.Join(home, ".cache/aim/bench-kube/kwok-"+kwokVersion, "kwok"), "kwok binary; installed there with go install when missing")
	flag.IntVar(&c.clusterQPS, "cluster-qps", 500, "client QPS of kube-controller-manager and kube-scheduler (burst twice that); their defaults (20 and 50) would make them the bottleneck")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Hour, "longest a run may take to bring every Solution to Ready")
	flag.StringVar(&c.docs, "docs", envString("KUBEBENCH_DOCS", ""), "also write the results between the bench/kube markers of this file, e.g. docs/benchmarks.md (env KUBEBENCH_DOCS)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs of every process, samples)")
	flag.StringVar(&c.stateDir, "state-dir", "", "parent of the temporary directory (default: $TMPDIR); etcd's data goes to /dev/shm when it exists, so that a disk shared with other work does not weigh on the API server")
	flag.StringVar(&c.profile, "profile", "", "write pprof profiles of the operator into this directory: CPU over the first minute of each run, heap once every Solution is Ready")
	flag.Parse()

	var err error
	if c.sizes, err = parseSizes(sizes); err != nil {
		fatal(err)
	}
	if c.sides, err = parseSides(sides); err != nil {
		fatal(err)
	}
	if c.components < 1 || c.components > 2 {
		fatal(fmt.Errorf("-components %d: use 1 or 2", c.components))
	}

	// The harness's own watches (controller-runtime's cache) report
	// only what goes wrong.
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(os.Stderr, "bench/kube: interrupted; every process stopped, the temporary directory removed")
			os.Exit(130)
		}
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/kube:", err)
	os.Exit(1)
}

func run(ctx context.Context, c config) error {
	if err := checkBinaries(ctx, &c); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(c.stateDir, "aim-bench-kube-")
	if err != nil {
		return err
	}
	if c.keep {
		step("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	// A copy, so that a `make build` by someone else during a long run
	// does not swap the binary under the measurement.
	aim := filepath.Join(tmp, "aim")
	if err := copyFile(c.aimBin, aim, 0o755); err != nil {
		return fmt.Errorf("copying the aim binary: %w", err)
	}
	c.aimBin = aim

	rep := report{when: time.Now(), cfg: c, machine: machine(), versions: versions(ctx, c)}
	for _, n := range c.sizes {
		for _, side := range c.sides {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", side, n))
			step("%s with %d solutions (load average %s)", side, n, loadAvg())
			res, err := runOne(ctx, c, dir, side, n)
			if err != nil {
				return fmt.Errorf("%s with %d solutions: %w", side, n, err)
			}
			rep.runs = append(rep.runs, res)
			step("%s with %d solutions: %s", side, n, res.summary())
			if !c.keep {
				os.RemoveAll(dir)
			}
		}
	}
	md := rep.markdown()
	fmt.Println(md)
	if c.docs != "" {
		if err := replaceSection(c.docs, md); err != nil {
			return err
		}
		step("results written to %s", c.docs)
	}
	return nil
}

// runOne measures one side with n solutions on a fresh cluster.
func runOne(ctx context.Context, c config, dir, side string, n int) (result, error) {
	res := result{side: side, solutions: n, components: c.components, loadBefore: loadAvg()}
	cl, err := startCluster(ctx, c, dir)
	if err != nil {
		return res, err
	}
	defer cl.stop()
	if err := cl.addNodes(ctx, c.nodes); err != nil {
		return res, cl.explain(err)
	}
	var op *operatorProc
	if side == sideAim {
		if op, err = startOperator(ctx, cl, dir, c.aimBin, c.profile != ""); err != nil {
			return res, cl.explain(err)
		}
		defer op.stop()
	}
	runCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := measure(runCtx, cl, op, c, side, n, &res); err != nil {
		if op != nil {
			err = fmt.Errorf("%w\n--- last lines of the operator's log\n%s", err, tail(op.log, 20))
		}
		return res, cl.explain(err)
	}
	res.loadAfter = loadAvg()
	return res, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-solutions %q: want positive numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}

const (
	sideAim   = "aim"
	sideFloor = "floor"
)

func parseSides(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case sideAim, sideFloor:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("-sides: unknown side %q (floor, aim)", f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-sides: name at least one side")
	}
	return out, nil
}
