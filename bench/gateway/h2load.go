package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// h2 is how h2load drives a proxy over HTTP/2 with TLS: few connections,
// many concurrent streams on each, as a browser multiplexes.
type h2 struct {
	Clients int // connections
	Streams int // concurrent streams per connection (h2load -m)
}

// runH2 drives https://<host>/<path> at addr for d. h2load prints no
// percentiles, so p50 and p99 come from its per-request log.
func (l load) runH2(ctx context.Context, h h2, addr, path, logFile string, d time.Duration) (result, error) {
	_, port, _ := strings.Cut(addr, ":")
	args := []string{"-c", l.CPUs, "h2load", "-t", strconv.Itoa(l.Threads),
		"-c", strconv.Itoa(h.Clients), "-m", strconv.Itoa(h.Streams),
		"-D", strconv.Itoa(int(d.Round(time.Second).Seconds())),
		"--connect-to", addr, "--log-file", logFile,
		"https://" + l.Host + ":" + port + path}
	_ = os.Remove(logFile)
	out, err := exec.CommandContext(ctx, "taskset", args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("taskset %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	_ = os.WriteFile(logFile+".out", out, 0o644) // for -keep
	r, err := parseH2load(string(out))
	if err != nil {
		return r, fmt.Errorf("reading h2load's report: %w\n%s", err, out)
	}
	f, err := os.Open(logFile)
	if err != nil {
		return r, err
	}
	defer f.Close()
	lat, err := readH2Log(f)
	if err != nil {
		return r, fmt.Errorf("%s: %w", logFile, err)
	}
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	if err := r.failed(); err != nil {
		return r, fmt.Errorf("%s: %w\n%s", addr, err, out)
	}
	return r, nil
}

// parseH2load reads h2load's summary (nghttp2 1.52): its rate, its counts
// of requests, and its status codes. A request that failed, errored or
// timed out, or answered other than 2xx, makes the run fail.
func parseH2load(out string) (result, error) {
	var r result
	var haveRPS, haveReq bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var err error
		switch {
		case strings.HasPrefix(line, "finished in "):
			// finished in 4.00s, 35081.50 req/s, 20.31MB/s
			f := strings.Fields(line)
			if len(f) < 5 || f[4] != "req/s," {
				return r, fmt.Errorf("line %q: not h2load's summary", line)
			}
			r.RPS, err = strconv.ParseFloat(f[3], 64)
			haveRPS = true
		case strings.HasPrefix(line, "requests: "):
			// requests: 1000 total, 1000 started, 1000 done, 990 succeeded, 10 failed, 10 errored, 0 timeout
			n, e := h2Counts(strings.TrimPrefix(line, "requests: "))
			if e != nil {
				return r, fmt.Errorf("line %q: %w", line, e)
			}
			r.Requests = n["done"]
			if bad := n["failed"] + n["errored"] + n["timeout"]; bad > 0 {
				r.Errors = fmt.Sprintf("%d failed, %d errored, %d timeout", n["failed"], n["errored"], n["timeout"])
			}
			haveReq = true
		case strings.HasPrefix(line, "status codes: "):
			n, e := h2Counts(strings.TrimPrefix(line, "status codes: "))
			if e != nil {
				return r, fmt.Errorf("line %q: %w", line, e)
			}
			r.Non2xx = n["3xx"] + n["4xx"] + n["5xx"]
		}
		if err != nil {
			return r, fmt.Errorf("line %q: %w", line, err)
		}
	}
	if !haveRPS || !haveReq {
		return r, fmt.Errorf("no \"finished in\" or \"requests:\" line (did h2load run to its end?)")
	}
	return r, nil
}

// h2Counts reads "1000 total, 990 succeeded, ..." into a map by name.
func h2Counts(s string) (map[string]int64, error) {
	m := map[string]int64{}
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("%q is not a count and a name", part)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		m[f[1]] = n
	}
	return m, nil
}

// readH2Log reads h2load's --log-file: per request, tab-separated, its
// start (µs since the epoch), its status and its duration in µs.
func readH2Log(f io.Reader) ([]time.Duration, error) {
	var lat []time.Duration
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 3 {
			return nil, fmt.Errorf("line %d: %q has not 3 tab-separated columns", n, sc.Text())
		}
		us, err := strconv.ParseInt(c[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: duration %q: %w", n, c[2], err)
		}
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("no request logged")
	}
	return lat, nil
}

// percentile is the nearest-rank q-quantile of ds (sorted in place).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[max(0, min(i, len(ds)-1))]
}
