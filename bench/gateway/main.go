// Command gateway measures aim's gateway against nginx as a reverse proxy
// in front of the very same backend container, in one run: requests per
// second and p50/p99 latency from wrk, pinned to the same CPUs for each,
// in interleaved rounds. A second aim, whose store also holds many
// sleeping solutions (-solutions, 10,000), fronts the same container in
// the same rounds; aim's start-up time, idle CPU and memory are reported
// for both. A second phase does it again with access logs on.
//
// Run it from the repository root: go run ./bench/gateway -aim bin/aim.
// It needs a Docker engine, nginx, wrk and taskset (nginx-light and wrk
// are installed with apt-get when missing). Every duration and size can
// also be set by environment (GWBENCH_*), so that `make bench` can be
// made shorter or longer without editing it.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/client"
)

const (
	image    = "aim-bench/gateway-backend:1"
	solution = "bench"
	prefix   = "aimbenchgw"
)

type config struct {
	aimBin    string
	rounds    int
	duration  time.Duration
	warmup    time.Duration
	load      load
	solutions int
	bodyBytes int
	docs      string
	keep      bool
	accessLog bool
}

func main() {
	var c config
	flag.StringVar(&c.aimBin, "aim", "bin/aim", "the aim binary to measure")
	flag.IntVar(&c.rounds, "rounds", envInt("GWBENCH_ROUNDS", 7), "measured rounds per phase, each proxy once per round (env GWBENCH_ROUNDS)")
	flag.DurationVar(&c.duration, "duration", envDuration("GWBENCH_DURATION", 4*time.Second), "length of one round (env GWBENCH_DURATION)")
	flag.DurationVar(&c.warmup, "warmup", envDuration("GWBENCH_WARMUP", 2*time.Second), "unmeasured load per proxy before each phase (env GWBENCH_WARMUP)")
	flag.StringVar(&c.load.CPUs, "wrk-cpus", envString("GWBENCH_WRK_CPUS", "1"), "taskset CPU list wrk is pinned to (env GWBENCH_WRK_CPUS)")
	flag.IntVar(&c.load.Threads, "threads", envInt("GWBENCH_THREADS", 1), "wrk threads (env GWBENCH_THREADS)")
	flag.IntVar(&c.load.Connections, "connections", envInt("GWBENCH_CONNECTIONS", 64), "wrk connections (env GWBENCH_CONNECTIONS)")
	flag.IntVar(&c.solutions, "solutions", envInt("GWBENCH_SOLUTIONS", 10000), "sleeping solutions in the second aim's store; 0 runs no second aim (env GWBENCH_SOLUTIONS)")
	flag.IntVar(&c.bodyBytes, "body", envInt("GWBENCH_BODY", 512), "bytes of the backend's answer (env GWBENCH_BODY)")
	flag.StringVar(&c.docs, "docs", envString("GWBENCH_DOCS", ""), "also write the results between the bench/gateway markers of this file, e.g. docs/benchmarks.md (env GWBENCH_DOCS)")
	flag.BoolVar(&c.accessLog, "access-log", envInt("GWBENCH_ACCESS_LOG", 1) != 0, "also measure both with access logs on (env GWBENCH_ACCESS_LOG=0 skips it)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (aim's data and log, nginx's configuration)")
	flag.Parse()
	c.load.Host = solution + ".localhost"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		if ctx.Err() != nil {
			// What failed was cut short by the signal; run has cleaned up.
			fmt.Fprintln(os.Stderr, "bench/gateway: interrupted; processes, containers and the network removed")
			os.Exit(130)
		}
		fmt.Fprintln(os.Stderr, "bench/gateway:", err)
		os.Exit(1)
	}
}

// report is everything one run measured.
type report struct {
	when     time.Time
	cfg      config
	machine  string
	versions []string
	plain    phase
	logged   *phase     // nil with -access-log=false
	aims     []instance // aim with 1 solution, then with many
}

// phase is one set of interleaved rounds.
type phase struct {
	title string
	sides []string   // what was measured: "aim", "aim 10001", "nginx"
	res   [][]result // by side, then round
}

// instance is one aim process's start and footprint.
type instance struct {
	solutions int           // registered, the awake one included
	startup   time.Duration // until /healthz answered
	ready     time.Duration // until the awake solution answered through aim
	idleCPU   float64       // CPU time per second when nobody calls
	idle      memory        // after start
	peak      memory        // after the rounds
}

func run(ctx context.Context, c config) error {
	if err := ensureTools(ctx); err != nil {
		return err
	}
	if _, err := os.Stat(c.aimBin); err != nil {
		return fmt.Errorf("the aim binary: %w (build it: go build -o bin/aim ./cmd/aim)", err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker engine does not answer (scripts/ensure-docker.sh starts one): %w", err)
	}
	dir, err := os.MkdirTemp("", "aim-bench-gateway-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Fprintln(os.Stderr, "keeping", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep := report{when: time.Now(), cfg: c, machine: machine(), versions: versions(ctx, cli)}

	step("building the backend image " + image)
	if err := buildBackend(ctx, cli, filepath.Join(dir, "backend")); err != nil {
		return err
	}
	// Leftovers of an interrupted earlier run would be adopted or fought.
	removeLeftovers(context.WithoutCancel(ctx), cli)
	defer removeLeftovers(context.WithoutCancel(ctx), cli)

	newAim := func(name string) *aimServer {
		return &aimServer{bin: c.aimBin, data: filepath.Join(dir, name, "data"), addr: freeAddr(), prefix: prefix,
			config: filepath.Join(dir, name, "client.json"), logPath: filepath.Join(dir, name, "aim.log")}
	}
	one := newAim("aim-1")
	defer one.stop()
	if err := os.MkdirAll(filepath.Dir(one.data), 0o755); err != nil {
		return err
	}
	step("deploying the backend with aim")
	if err := one.start(ctx); err != nil {
		return err
	}
	if err := writeManifest(filepath.Join(dir, "solution"), solution, image, c.bodyBytes); err != nil {
		return err
	}
	if err := one.cli(ctx, "deploy", "-q", filepath.Join(dir, "solution")); err != nil {
		return err
	}
	upstream, err := backendAddr(ctx, cli)
	if err != nil {
		return err
	}
	one.stop()

	// The second aim starts from a copy of the first one's store, so it
	// knows the same solution, same generation, and adopts the same
	// container: both aims share the Docker prefix. Neither changes the
	// container during the run (it never idles long enough to sleep and
	// never grows), so sharing it is safe here, though not something to
	// do in production.
	var many *aimServer
	if c.solutions > 0 {
		many = newAim("aim-many")
		defer many.stop()
		if err := copyDir(one.data, many.data); err != nil {
			return fmt.Errorf("copying aim's data: %w", err)
		}
		step(fmt.Sprintf("registering %d sleeping solutions in the second aim's store", c.solutions))
		t := time.Now()
		if err := seed(ctx, many.data, image, c.solutions); err != nil {
			return err
		}
		step(fmt.Sprintf("registered in %s", time.Since(t).Round(time.Millisecond)))
	}

	ng, err := startNginx(ctx, filepath.Join(dir, "nginx"), freeAddr(), upstream, false)
	if err != nil {
		return err
	}
	defer ng.stop()

	// Each aim is measured from a fresh start on its data, one after the
	// other, so that neither start competes with the other.
	start := func(a *aimServer, solutions int, args ...string) (instance, error) {
		in := instance{solutions: solutions}
		a.stop()
		a.extra = args
		if err := a.start(ctx); err != nil {
			return in, err
		}
		in.startup = time.Since(a.started)
		if err := a.waitFor(ctx, c.load.Host, "/", 5*time.Minute); err != nil {
			return in, err
		}
		in.ready = time.Since(a.started)
		if now, err := backendAddr(ctx, cli); err != nil || now != upstream {
			return in, fmt.Errorf("the backend moved from %s to %s (%v) when aim started: the proxies would front different ones", upstream, now, err)
		}
		// Let the start settle (the first resync, the scaler's first
		// look), then see what aim costs when nobody calls: periodic work
		// over every solution would take CPU from the proxying.
		time.Sleep(time.Second)
		cpu0, err := a.cpuTime()
		if err != nil {
			return in, err
		}
		const window = 5 * time.Second
		time.Sleep(window)
		cpu1, err := a.cpuTime()
		if err != nil {
			return in, err
		}
		in.idleCPU = float64(cpu1-cpu0) / float64(window)
		if in.idle, err = a.memory(ctx); err != nil {
			return in, err
		}
		step(fmt.Sprintf("aim with %d solution(s): /healthz after %s, the solution answers after %s, RSS %s, idle CPU %.1f%%",
			solutions, in.startup.Round(time.Millisecond), in.ready.Round(time.Millisecond), mib(in.idle.RSS), 100*in.idleCPU))
		return in, nil
	}

	in1, err := start(one, 1)
	if err != nil {
		return err
	}
	rep.plain = phase{title: "Plain", sides: []string{"aim", "nginx"}}
	urls := []string{one.url(), ng.url()}
	if many != nil {
		inN, err := start(many, c.solutions+1)
		if err != nil {
			return err
		}
		rep.aims = []instance{in1, inN}
		rep.plain.sides = []string{"aim", fmt.Sprintf("aim %d", c.solutions+1), "nginx"}
		urls = []string{one.url(), many.url(), ng.url()}
	} else {
		rep.aims = []instance{in1}
	}
	if err := sameAnswer(ctx, c.load.Host, urls...); err != nil {
		return err
	}
	step("phase 1: " + fmt.Sprint(rep.plain.sides))
	if rep.plain.res, err = compare(ctx, c, rep.plain.sides, urls); err != nil {
		return err
	}
	if rep.aims[0].peak, err = one.memory(ctx); err != nil {
		return err
	}
	if many != nil {
		if rep.aims[1].peak, err = many.memory(ctx); err != nil {
			return err
		}
		many.stop()
	}

	if c.accessLog {
		step("phase 2: aim and nginx with access logs on")
		ngLog, err := startNginx(ctx, filepath.Join(dir, "nginx-log"), freeAddr(), upstream, true)
		if err != nil {
			return err
		}
		defer ngLog.stop()
		aimLog := filepath.Join(dir, "aim-access.log")
		if _, err := start(one, 1, "--access-log", aimLog); err != nil {
			return err
		}
		rep.logged = &phase{title: "Access logs on", sides: []string{"aim", "nginx"}}
		if rep.logged.res, err = compare(ctx, c, rep.logged.sides, []string{one.url(), ngLog.url()}); err != nil {
			return err
		}
		// A proxy that logged nothing was not measured with its log.
		for _, f := range []string{aimLog, filepath.Join(ngLog.dir, "access.log")} {
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				return fmt.Errorf("the access log %s is empty or missing (%v)", f, err)
			}
		}
	}

	var md bytes.Buffer
	rep.write(&md)
	fmt.Print(md.String())
	if c.docs != "" {
		if err := replaceSection(c.docs, md.String()); err != nil {
			return err
		}
		step("wrote the results into " + c.docs)
	}
	return nil
}

// compare drives each side in turn: a warm-up each, then rounds in which
// every side runs once, the order rotating from round to round, so that a
// trend in the machine's other load weighs on all alike.
func compare(ctx context.Context, c config, names, urls []string) ([][]result, error) {
	if c.warmup > 0 {
		for i, u := range urls {
			if _, err := c.load.run(ctx, u, c.warmup); err != nil {
				return nil, fmt.Errorf("warming up %s: %w", names[i], err)
			}
		}
	}
	res := make([][]result, len(urls))
	for round := range c.rounds {
		for k := range urls {
			i := (round + k) % len(urls)
			r, err := c.load.run(ctx, urls[i], c.duration)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, names[i], err)
			}
			fmt.Fprintf(os.Stderr, "  round %d %-10s %9.0f req/s  p50 %-9s p99 %s\n", round+1, names[i], r.RPS, ms(r.P50), ms(r.P99))
			res[i] = append(res[i], r)
		}
	}
	return res, nil
}
