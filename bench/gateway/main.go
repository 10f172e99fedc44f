// Command gateway measures aim's gateway against nginx as a reverse proxy
// in front of the very same backend container, in one run: requests per
// second and p50/p99 latency from wrk, pinned to the same CPUs for both,
// in interleaved rounds. It then registers many sleeping solutions
// (-solutions, 10,000) in aim's store, restarts aim on it and measures
// again, with aim's start-up time and memory for both.
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
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	archive "github.com/moby/go-archive"

	"github.com/aimhub/aim/internal/runtime/docker"
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
	flag.IntVar(&c.rounds, "rounds", envInt("GWBENCH_ROUNDS", 5), "measured rounds per proxy and phase (env GWBENCH_ROUNDS)")
	flag.DurationVar(&c.duration, "duration", envDuration("GWBENCH_DURATION", 6*time.Second), "length of one round (env GWBENCH_DURATION)")
	flag.DurationVar(&c.warmup, "warmup", envDuration("GWBENCH_WARMUP", 2*time.Second), "unmeasured load per proxy before each phase (env GWBENCH_WARMUP)")
	flag.StringVar(&c.load.CPUs, "wrk-cpus", envString("GWBENCH_WRK_CPUS", "1"), "taskset CPU list wrk is pinned to (env GWBENCH_WRK_CPUS)")
	flag.IntVar(&c.load.Threads, "threads", envInt("GWBENCH_THREADS", 1), "wrk threads (env GWBENCH_THREADS)")
	flag.IntVar(&c.load.Connections, "connections", envInt("GWBENCH_CONNECTIONS", 64), "wrk connections (env GWBENCH_CONNECTIONS)")
	flag.IntVar(&c.solutions, "solutions", envInt("GWBENCH_SOLUTIONS", 10000), "sleeping solutions registered for the second phase; 0 skips it (env GWBENCH_SOLUTIONS)")
	flag.IntVar(&c.bodyBytes, "body", envInt("GWBENCH_BODY", 512), "bytes of the backend's answer (env GWBENCH_BODY)")
	flag.StringVar(&c.docs, "docs", envString("GWBENCH_DOCS", ""), "also write the results between the bench/gateway markers of this file, e.g. docs/benchmarks.md (env GWBENCH_DOCS)")
	flag.BoolVar(&c.accessLog, "access-log", envInt("GWBENCH_ACCESS_LOG", 1) != 0, "also measure both with access logs on (env GWBENCH_ACCESS_LOG=0 skips it)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (aim's data and log, nginx's configuration)")
	flag.Parse()
	c.load.Host = solution + ".localhost"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
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
	one      phase
	logged   *phase // nil with -access-log=false
	many     *phase // nil when -solutions is 0
}

// phase is aim with some number of solutions, against nginx.
type phase struct {
	solutions  int // registered in aim, the awake one included
	startup    time.Duration
	ready      time.Duration // until the awake solution answered through aim
	idle, peak memory
	aim, nginx []result
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
	rep := report{when: time.Now(), cfg: c, machine: machine(), versions: versions(ctx, cli, c.aimBin)}

	step("building the backend image " + image)
	if err := buildBackend(ctx, cli, filepath.Join(dir, "backend")); err != nil {
		return err
	}
	// Leftovers of an interrupted earlier run would be adopted or fought.
	removeLeftovers(context.WithoutCancel(ctx), cli)
	defer removeLeftovers(context.WithoutCancel(ctx), cli)

	a := &aimServer{bin: c.aimBin, data: filepath.Join(dir, "data"), addr: freeAddr(), prefix: prefix,
		config: filepath.Join(dir, "client.json"), logPath: filepath.Join(dir, "aim.log")}
	defer a.stop()

	step("deploying the backend with aim")
	if err := a.start(ctx); err != nil {
		return err
	}
	if err := writeManifest(filepath.Join(dir, "solution"), solution, image, c.bodyBytes); err != nil {
		return err
	}
	if err := a.cli(ctx, "deploy", "-q", filepath.Join(dir, "solution")); err != nil {
		return err
	}
	upstream, err := backendAddr(ctx, cli)
	if err != nil {
		return err
	}
	// Two nginx, idle but for the phase that uses one: without and with an
	// access log.
	ng, err := startNginx(ctx, filepath.Join(dir, "nginx"), freeAddr(), upstream, false)
	if err != nil {
		return err
	}
	defer ng.stop()
	aimURL := "http://" + a.addr + "/"
	if err := sameAnswer(ctx, c.load.Host, aimURL, ng.url()); err != nil {
		return err
	}

	// Every phase measures aim after a restart on its data, so that the
	// start-up times and the memory compare like with like.
	measure := func(p *phase, ng *nginx, aimArgs ...string) error {
		a.stop()
		a.extra = aimArgs
		if err := a.start(ctx); err != nil {
			return err
		}
		p.startup = time.Since(a.started)
		if err := a.waitFor(ctx, c.load.Host, "/", 5*time.Minute); err != nil {
			return err
		}
		p.ready = time.Since(a.started)
		if now, err := backendAddr(ctx, cli); err != nil || now != upstream {
			return fmt.Errorf("the backend moved from %s to %s (%v) when aim restarted: nginx would front another", upstream, now, err)
		}
		// Let the start settle (the first resync, the scaler's first look)
		// before reading memory.
		time.Sleep(2 * time.Second)
		if p.idle, err = a.memory(ctx); err != nil {
			return err
		}
		step(fmt.Sprintf("aim with %d solution(s): started in %s, answering in %s, RSS %s", p.solutions, p.startup.Round(time.Millisecond), p.ready.Round(time.Millisecond), mib(p.idle.RSS)))
		if p.aim, p.nginx, err = compare(ctx, c, aimURL, ng.url()); err != nil {
			return err
		}
		p.peak, err = a.memory(ctx)
		return err
	}

	step("phase 1: aim with 1 solution against nginx")
	rep.one.solutions = 1
	if err := measure(&rep.one, ng); err != nil {
		return err
	}
	if c.accessLog {
		step("phase 2: the same with access logs on, for both")
		ngLog, err := startNginx(ctx, filepath.Join(dir, "nginx-log"), freeAddr(), upstream, true)
		if err != nil {
			return err
		}
		defer ngLog.stop()
		aimLog := filepath.Join(dir, "aim-access.log")
		rep.logged = &phase{solutions: 1}
		if err := measure(rep.logged, ngLog, "--access-log", aimLog); err != nil {
			return err
		}
		// A proxy that logged nothing was not measured with its log.
		for _, f := range []string{aimLog, filepath.Join(ngLog.dir, "access.log")} {
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				return fmt.Errorf("the access log %s is empty or missing (%v)", f, err)
			}
		}
		ngLog.stop()
	}
	if c.solutions > 0 {
		a.stop()
		step(fmt.Sprintf("registering %d sleeping solutions in aim's store", c.solutions))
		t := time.Now()
		if err := seed(ctx, a.data, image, c.solutions); err != nil {
			return err
		}
		step(fmt.Sprintf("registered in %s", time.Since(t).Round(time.Millisecond)))
		rep.many = &phase{solutions: c.solutions + 1}
		step(fmt.Sprintf("phase 3: aim with %d solutions against nginx", rep.many.solutions))
		if err := measure(rep.many, ng); err != nil {
			return err
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

// compare drives aim and nginx in turn: a warm-up each, then rounds whose
// order alternates (aim first, then nginx first), so that a trend in the
// machine's other load weighs on both alike.
func compare(ctx context.Context, c config, aimURL, nginxURL string) (aim, ng []result, err error) {
	urls := [2]string{aimURL, nginxURL}
	names := [2]string{"aim", "nginx"}
	if c.warmup > 0 {
		for i, u := range urls {
			if _, err := c.load.run(ctx, u, c.warmup); err != nil {
				return nil, nil, fmt.Errorf("warming up %s: %w", names[i], err)
			}
		}
	}
	var res [2][]result
	for round := range c.rounds {
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			r, err := c.load.run(ctx, urls[i], c.duration)
			if err != nil {
				return nil, nil, fmt.Errorf("round %d, %s: %w", round+1, names[i], err)
			}
			fmt.Fprintf(os.Stderr, "  round %d %-5s %9.0f req/s  p50 %-9s p99 %s\n", round+1, names[i], r.RPS, r.P50, r.P99)
			res[i] = append(res[i], r)
		}
	}
	return res[0], res[1], nil
}

// sameAnswer checks that both proxies answer GET / with 200 and the same
// body: they front the same backend.
func sameAnswer(ctx context.Context, host string, urls ...string) error {
	var first []byte
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s (Host %s): %d %s", u, host, resp.StatusCode, b)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			return fmt.Errorf("GET %s answered differently from %s: the proxies do not front the same backend", u, urls[0])
		}
	}
	return nil
}

// backendAddr is the address of the benchmark solution's one container,
// on its bridge network, as aim's gateway dials it.
func backendAddr(ctx context.Context, cli *client.Client) (string, error) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelManaged+"="+prefix), filters.Arg("label", docker.LabelSolution+"="+solution))})
	if err != nil {
		return "", err
	}
	if len(cs) != 1 {
		return "", fmt.Errorf("want one running container of %s, found %d", solution, len(cs))
	}
	info, err := cli.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		return "", err
	}
	for _, n := range info.NetworkSettings.Networks {
		if n.IPAddress != "" {
			return net.JoinHostPort(n.IPAddress, "8080"), nil
		}
	}
	return "", fmt.Errorf("container %s has no address", cs[0].ID[:12])
}

// removeLeftovers removes every container and network made with this
// benchmark's Docker prefix.
func removeLeftovers(ctx context.Context, cli *client.Client) {
	f := filters.NewArgs(filters.Arg("label", docker.LabelManaged+"="+prefix))
	cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			fmt.Fprintln(os.Stderr, "bench/gateway: removing container:", err)
		}
	}
	ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil {
			fmt.Fprintln(os.Stderr, "bench/gateway: removing network:", err)
		}
	}
}

func buildBackend(ctx context.Context, cli *client.Client, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "backend"), "./bench/gateway/backend")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the backend (run from the repository root): %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY backend /backend\nUSER 65534:65534\nENTRYPOINT [\"/backend\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{IncludeFiles: []string{"Dockerfile", "backend"}})
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, tar, build.ImageBuildOptions{Tags: []string{image}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		return fmt.Errorf("building %s: %w", image, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("building %s: %s", image, out)
	}
	return nil
}

// ensureTools installs what is missing with apt-get (Debian's nginx-light
// and wrk), and fails naming what still is.
func ensureTools(ctx context.Context) error {
	pkgs := map[string]string{"nginx": "nginx-light", "wrk": "wrk", "taskset": "util-linux"}
	var missing []string
	for _, bin := range []string{"nginx", "wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkgs[bin])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	step("installing " + strings.Join(missing, ", ") + " with apt-get")
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing %s: %v\n%s", strings.Join(missing, " "), err, out)
	}
	for _, bin := range []string{"nginx", "wrk", "taskset"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is still missing after apt-get install %s", bin, pkgs[bin])
		}
	}
	return nil
}

func versions(ctx context.Context, cli *client.Client, aimBin string) []string {
	var v []string
	v = append(v, runtime.Version())
	v = append(v, nginxVersion())
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	first, _, _ := strings.Cut(string(out), " Copyright")
	v = append(v, strings.TrimSpace(first))
	if sv, err := cli.ServerVersion(ctx); err == nil {
		v = append(v, "Docker engine "+sv.Version)
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := "aim at " + strings.TrimSpace(string(out))
		if st, _ := exec.Command("git", "status", "--porcelain", "--", "internal", "cmd").Output(); len(st) > 0 {
			rev += " with uncommitted changes"
		}
		v = append(v, rev)
	}
	return v
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

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func step(s string) { fmt.Fprintf(os.Stderr, "bench/gateway: %s\n", s) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/gateway: %s=%q is not a number\n", k, v)
		os.Exit(2)
	}
	return n
}

func envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/gateway: %s=%q is not a duration (e.g. 10s)\n", k, v)
		os.Exit(2)
	}
	return d
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
