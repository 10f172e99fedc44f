package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// operatorFlags are the chart's (deploy/manifests/aim.yaml), but for the
// kubeconfig and the metrics address, and with no health endpoint.
func operatorFlags(kubeconfig, metricsAddr string) []string {
	return []string{
		"operator",
		"--kubeconfig=" + kubeconfig,
		"--domain=aim.example.com",
		"--url-scheme=http",
		"--idle-timeout=30m",
		"--namespace=" + namespace,
		"--gateway-namespace=" + namespace,
		"--gateway-labels=app.kubernetes.io/name=aim,app.kubernetes.io/instance=aim,app.kubernetes.io/component=gateway",
		"--node-groups=general,solutions,gpu",
		"--metrics-addr=" + metricsAddr,
		"--health-addr=0",
		"--leader-elect",
		"--leader-election-namespace=" + namespace,
		"--log-json",
	}
}

// operatorProc is the operator process under measurement.
type operatorProc struct {
	p       *proc
	log     string
	metrics string // URL of its /metrics
	pprof   string // URL of its /debug/pprof/, or empty
}

// saveProfile writes one of the operator's pprof profiles (name and
// query, e.g. "heap?gc=1") to path.
func (o *operatorProc) saveProfile(ctx context.Context, query, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.pprof+query, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profiling the operator: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiling the operator (%s): %s", query, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startOperator runs bin's operator and waits until it leads: only then
// does it reconcile. It serves pprof when profile is set.
func startOperator(ctx context.Context, cl *cluster, dir, bin string, profile bool) (*operatorProc, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort())
	args := operatorFlags(cl.kubeconfigs["operator"], addr)
	pprofURL := ""
	if profile {
		pp := fmt.Sprintf("127.0.0.1:%d", freePort())
		args = append(args, "--pprof-addr="+pp)
		pprofURL = "http://" + pp + "/debug/pprof/"
	}
	p, err := startProc(dir, "operator", bin, nil, args...)
	if err != nil {
		return nil, err
	}
	op := &operatorProc{p: p, log: p.log, metrics: "http://" + addr + "/metrics", pprof: pprofURL}
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := scrape(ctx, op.metrics)
		if err == nil && m["leader_election_master_status"] == 1 {
			return op, nil
		}
		if p.exited() {
			return nil, fmt.Errorf("the operator exited (%v); last lines of %s:\n%s", p.cmd.ProcessState, p.log, tail(p.log, 20))
		}
		if time.Now().After(deadline) {
			op.stop()
			return nil, fmt.Errorf("the operator does not lead after a minute (last scrape: %v); last lines of %s:\n%s", err, p.log, tail(p.log, 20))
		}
		if err := cl.sleep(ctx, 200*time.Millisecond); err != nil {
			op.stop()
			return nil, err
		}
	}
}

func (o *operatorProc) stop() { o.p.stop() }

func (o *operatorProc) pid() int { return o.p.cmd.Process.Pid }

// sample is the operator's footprint and work at one moment.
type sample struct {
	at          time.Time
	rss, hwm    int64 // bytes, VmRSS and VmHWM
	heapInuse   int64 // bytes, go_memstats_heap_inuse_bytes
	cpu         time.Duration
	requests    float64 // rest_client_requests_total, every client
	reconciles  float64 // controller_runtime_reconcile_total
	reconcileS  float64 // controller_runtime_reconcile_time_seconds_sum
	queueWaitS  float64 // workqueue_queue_duration_seconds_sum
	queueWaitN  float64 // workqueue_queue_duration_seconds_count
	queueDepth  float64 // workqueue_depth
	scrapeError error
}

// read takes a sample from /proc and /metrics.
func (o *operatorProc) read(ctx context.Context) sample {
	s := sample{at: time.Now()}
	s.rss, s.hwm, _ = procMemory(o.pid())
	s.cpu, _ = procCPU(o.pid())
	m, err := scrape(ctx, o.metrics)
	s.scrapeError = err
	s.heapInuse = int64(m["go_memstats_heap_inuse_bytes"])
	s.requests = m["rest_client_requests_total"]
	s.reconciles = m["controller_runtime_reconcile_total"]
	s.reconcileS = m["controller_runtime_reconcile_time_seconds_sum"]
	s.queueWaitS = m["workqueue_queue_duration_seconds_sum"]
	s.queueWaitN = m["workqueue_queue_duration_seconds_count"]
	s.queueDepth = m["workqueue_depth"]
	return s
}

// sampler reads the operator every second until stopped and keeps the
// peaks: the Go heap can shrink between two reads, VmHWM cannot.
type sampler struct {
	mu        sync.Mutex
	first     sample
	last      sample
	peakHeap  int64
	peakDepth float64
	stopc     chan struct{}
	done      chan struct{}
}

func (o *operatorProc) sample(ctx context.Context) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	s.first = o.read(ctx)
	s.add(s.first)
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.stopc:
				return
			case <-t.C:
				s.add(o.read(ctx))
			}
		}
	}()
	return s
}

func (s *sampler) add(x sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = x
	s.peakHeap = max(s.peakHeap, x.heapInuse)
	s.peakDepth = max(s.peakDepth, x.queueDepth)
}

func (s *sampler) latest() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// stop ends the sampling with a last read.
func (s *sampler) stop(ctx context.Context, o *operatorProc) {
	close(s.stopc)
	<-s.done
	s.add(o.read(ctx))
}

// scrape reads a Prometheus text exposition into sums by metric name
// (every label set added up): the operator has one controller and one
// work queue, so the sums are theirs.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the operator's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the operator's metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("metrics line %q: unterminated labels", line)
			}
			rest = rest[j+1:]
		}
		// The value, then an optional timestamp.
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// procMemory reads VmRSS and VmHWM of a process, in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// procCPU is the CPU time a process used, user and system, from
// /proc/<pid>/stat (in ticks of 1/100 s, Linux's USER_HZ).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it don't.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("reading /proc/%d/stat: %q", pid, b)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("reading /proc/%d/stat: %q", pid, b)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
