// Command gateway measures aim's gateway against nginx and HAProxy as
// reverse proxies in front of the very same backend container, in one run:
// requests per second, p50/p99 latency and the proxy's CPU time per
// request, with the load tool pinned to the same CPUs for each, in
// interleaved rounds, case by case (-cases): plain HTTP/1.1, HTTPS/1.1,
// HTTP/2 over TLS, new TLS connections (full and resumed), the first three
// with access logs on, a 1 MiB answer and a streamed one. A second aim,
// whose store also holds many sleeping solutions (-solutions, 10,000),
// fronts the same container in the plain HTTP/1.1 rounds; aim's start-up
// time, idle CPU and memory are reported for both.
//
// Run it from the repository root: go run ./bench/gateway -aim bin/aim.
// It needs a Docker engine, nginx, HAProxy, wrk, h2load, taskset and
// unshare (nginx-light, haproxy, wrk and nghttp2-client are installed with
// apt-get when missing). Every duration and size can also be set by
// environment (GWBENCH_*), so that `make bench` can be made shorter or
// longer without editing it.
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
	cases     string
	debug     [3]string // pprof addresses of the plain, the TLS and the 10,001-solution aim
	h2        h2
	tlsConns  int
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
	flag.StringVar(&c.cases, "cases", envString("GWBENCH_CASES", "all"), "cases to run, separated by commas: all, or of http1, https1, h2, tls-full, tls-resume, http1-log, https1-log, h2-log, big, stream (env GWBENCH_CASES)")
	flag.IntVar(&c.h2.Clients, "h2-clients", envInt("GWBENCH_H2_CLIENTS", 4), "h2load connections (env GWBENCH_H2_CLIENTS)")
	flag.IntVar(&c.h2.Streams, "h2-streams", envInt("GWBENCH_H2_STREAMS", 32), "h2load concurrent streams per connection (env GWBENCH_H2_STREAMS)")
	flag.IntVar(&c.tlsConns, "tls-connections", envInt("GWBENCH_TLS_CONNECTIONS", 16), "concurrent new TLS connections in tls-full and tls-resume (env GWBENCH_TLS_CONNECTIONS)")
	flag.StringVar(&c.debug[0], "aim-debug", "", "serve the plain aim's pprof profiles at this address, to profile it during the run (go tool pprof http://ADDR/debug/pprof/profile)")
	flag.StringVar(&c.debug[1], "aim-tls-debug", "", "the same for the aim that serves HTTPS")
	flag.StringVar(&c.debug[2], "aim-many-debug", "", "the same for the aim with many solutions")
	tl := flag.String("tlsload", "", "")
	tlSNI := flag.String("tlsload-sni", "", "")
	tlPath := flag.String("tlsload-path", "/", "")
	tlResume := flag.Bool("tlsload-resume", false, "")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (aim's data and log, nginx's configuration)")
	flag.Parse()
	c.load.Host = solution + ".localhost"
	if *tl != "" {
		// The TLS client of tls-full and tls-resume, run by runTLS.
		t := tlsLoad{Addr: *tl, ServerName: *tlSNI, Path: *tlPath, Resume: *tlResume, Workers: c.load.Connections, Duration: c.duration}
		if err := t.drive(context.Background(), os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "tlsload:", err)
			os.Exit(1)
		}
		return
	}

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
	phases   []phase    // one per case, in the order run
	aims     []instance // aim with 1 solution, then with many
}

// phase is one set of interleaved rounds.
type phase struct {
	name  string // the case's
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
	one.debug = c.debug[0]
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
		many.debug = c.debug[2]
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

	cases, err := selectCases(c.cases, c.accessLog)
	if err != nil {
		return err
	}
	needTLS := false
	for _, bc := range cases {
		needTLS = needTLS || bc.tls
	}
	c.load.Hosts = filepath.Join(dir, "hosts")
	if err := os.WriteFile(c.load.Hosts, []byte("127.0.0.1 localhost "+c.load.Host+"\n"), 0o644); err != nil {
		return err
	}

	// aim serves HTTPS from its own instance: with TLS on, its plain
	// listener redirects visitors to HTTPS. It starts from a copy of the
	// same store, like the second aim.
	var tlsAim *aimServer
	opts := proxyOpts{Upstream: upstream}
	if needTLS {
		tlsAim = newAim("aim-tls")
		tlsAim.https, tlsAim.debug = freeAddr(), c.debug[1]
		defer tlsAim.stop()
		if err := copyDir(one.data, tlsAim.data); err != nil {
			return fmt.Errorf("copying aim's data: %w", err)
		}
		step("issuing the benchmark's certificate with aim's internal CA (ECDSA P-256), for all three")
		if err := tlsAim.start(ctx); err != nil {
			return err
		}
		if err := tlsAim.waitTLS(ctx, c.load.Host, time.Minute); err != nil {
			return err
		}
		if opts.Cert, opts.Key, err = findCert(tlsAim.data, c.load.Host); err != nil {
			return err
		}
	}
	peers := func(name string, log bool) (*nginx, *haproxy, error) {
		o := opts
		o.Listen, o.AccessLog = freeAddr(), log
		if needTLS {
			o.TLSListen = freeAddr()
		}
		ng, err := startNginx(ctx, filepath.Join(dir, "nginx"+name), o)
		if err != nil {
			return nil, nil, err
		}
		o.Listen = freeAddr()
		if needTLS {
			o.TLSListen = freeAddr()
		}
		hp, err := startHAProxy(ctx, filepath.Join(dir, "haproxy"+name), o)
		if err != nil {
			ng.stop()
			return nil, nil, err
		}
		return ng, hp, nil
	}
	ng, hp, err := peers("", false)
	if err != nil {
		return err
	}
	defer ng.stop()
	defer hp.stop()
	// Each aim is measured from a fresh start on its data, one after the
	// other, so that neither start competes with the other.
	start := func(a *aimServer, solutions int, args ...string) (instance, error) {
		return startMeasured(ctx, cli, c.load.Host, upstream, a, solutions, args...)
	}

	in1, err := start(one, 1)
	if err != nil {
		return err
	}
	rep.aims = []instance{in1}
	if many != nil {
		inN, err := start(many, c.solutions+1)
		if err != nil {
			return err
		}
		rep.aims = append(rep.aims, inN)
	}
	for _, path := range []string{"", "big", "stream"} {
		if err := sameAnswer(ctx, c.load.Host, one.url()+path, ng.url()+path, hp.url()+path); err != nil {
			return err
		}
	}
	sides := func(ng *nginx, hp *haproxy) []side {
		a := side{name: "aim", plain: one.addr, plainCPU: one.cpuTime}
		if tlsAim != nil {
			a.tls, a.tlsCPU = tlsAim.https, tlsAim.cpuTime
		}
		return []side{a,
			{name: "nginx", plain: ng.addr, tls: ng.tlsAddr, plainCPU: ng.cpuTime, tlsCPU: ng.cpuTime},
			{name: "haproxy", plain: hp.addr, tls: hp.tlsAddr, plainCPU: hp.cpuTime, tlsCPU: hp.cpuTime}}
	}
	for _, bc := range cases {
		if bc.log {
			continue
		}
		ss := sides(ng, hp)
		if bc.name == "http1" && many != nil {
			// The second aim runs in the same rounds as the first: their
			// ratio needs no correction for the machine's load.
			ss = append(ss[:1], append([]side{{name: fmt.Sprintf("aim %d", c.solutions+1), plain: many.addr, plainCPU: many.cpuTime}}, ss[1:]...)...)
		}
		step("case " + bc.name + ": " + bc.title)
		p, err := compareCase(ctx, c, bc, ss, dir)
		if err != nil {
			return err
		}
		rep.phases = append(rep.phases, p)
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

	var logged []benchCase
	for _, bc := range cases {
		if bc.log {
			logged = append(logged, bc)
		}
	}
	if len(logged) > 0 {
		step("access logs on for aim, nginx and haproxy")
		ng.stop()
		hp.stop()
		ngLog, hpLog, err := peers("-log", true)
		if err != nil {
			return err
		}
		defer ngLog.stop()
		defer hpLog.stop()
		aimLog, aimTLSLog := filepath.Join(dir, "aim-access.log"), filepath.Join(dir, "aim-tls-access.log")
		if _, err := start(one, 1, "--access-log", aimLog); err != nil {
			return err
		}
		logs := []string{aimLog, filepath.Join(ngLog.dir, "access.log")}
		if tlsAim != nil {
			if _, err := start(tlsAim, 1, "--access-log", aimTLSLog); err != nil {
				return err
			}
		}
		for _, bc := range logged {
			step("case " + bc.name + ": " + bc.title)
			p, err := compareCase(ctx, c, bc, sides(ngLog, hpLog), dir)
			if err != nil {
				return err
			}
			rep.phases = append(rep.phases, p)
			if bc.tls {
				logs = append(logs, aimTLSLog)
			}
		}
		hpLog.stop() // flushes its log receiver
		logs = append(logs, hpLog.accessLog())
		// A proxy that logged nothing was not measured with its log.
		for _, f := range logs {
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

// startMeasured (re)starts aim with args, waits until the benchmark's
// solution answers through it, and measures its start and, for a plain
// aim, what it costs when idle.
func startMeasured(ctx context.Context, cli *client.Client, host, upstream string, a *aimServer, solutions int, args ...string) (instance, error) {
	in := instance{solutions: solutions}
	a.stop()
	a.extra = args
	if err := a.start(ctx); err != nil {
		return in, err
	}
	in.startup = time.Since(a.started)
	if a.https != "" {
		return in, a.waitTLS(ctx, host, time.Minute)
	}
	if err := a.waitFor(ctx, host, "/", 5*time.Minute); err != nil {
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
