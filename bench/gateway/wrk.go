package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// load is how wrk drives a proxy; both proxies get the same one.
type load struct {
	CPUs        string // taskset's CPU list for wrk
	Threads     int
	Connections int
	Host        string // the Host header every request carries
	// Hosts is a hosts file naming Host 127.0.0.1, bind-mounted over
	// /etc/hosts for wrk alone (in its own mount namespace) when it speaks
	// TLS: wrk sends the URL's host as SNI, and aim picks the certificate
	// by it, so the URL must carry the name, not the address.
	Hosts string
}

// result is what one wrk run measured.
type result struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int64
	Non2xx   int64  // wrk's "Non-2xx or 3xx responses"
	Errors   string // wrk's "Socket errors" line, when it has one
	// CPU is the proxy's CPU time (user and system, its workers
	// included) over the run, per request completed.
	CPU time.Duration
}

// run drives url for d; see failed for what makes it fail.
func (l load) run(ctx context.Context, url string, d time.Duration) (result, error) {
	args := []string{"-c", l.CPUs, "wrk", "--latency",
		"-t", strconv.Itoa(l.Threads), "-c", strconv.Itoa(l.Connections),
		"-d", fmt.Sprintf("%ds", int(d.Round(time.Second).Seconds())),
		"-H", "Host: " + l.Host, url}
	name := "taskset"
	if strings.HasPrefix(url, "https://") {
		args = append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec taskset "$@"`, l.Hosts}, args...)
		name = "unshare"
	}
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	r, err := parseWrk(string(out))
	if err != nil {
		return r, fmt.Errorf("reading wrk's report: %w\n%s", err, out)
	}
	if err := r.failed(); err != nil {
		return r, fmt.Errorf("%s: %w\n%s", url, err, out)
	}
	return r, nil
}

// failed says why a run does not count: a proxy that answers fast by
// dropping or refusing requests has not won.
func (r result) failed() error {
	switch {
	case r.Non2xx > 0:
		return fmt.Errorf("%d of %d responses were not 2xx or 3xx", r.Non2xx, r.Requests)
	case r.Errors != "":
		return fmt.Errorf("socket errors: %s", r.Errors)
	case r.Requests == 0:
		return fmt.Errorf("wrk completed no request")
	}
	return nil
}

// parseWrk reads wrk 4's report (with --latency).
func parseWrk(out string) (result, error) {
	var r result
	var have50, have99, haveRPS bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case len(f) == 2 && f[0] == "50%":
			r.P50, err = wrkDuration(f[1])
			have50 = true
		case len(f) == 2 && f[0] == "99%":
			r.P99, err = wrkDuration(f[1])
			have99 = true
		case len(f) == 2 && f[0] == "Requests/sec:":
			r.RPS, err = strconv.ParseFloat(f[1], 64)
			haveRPS = true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			r.Requests, err = strconv.ParseInt(f[0], 10, 64)
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			r.Non2xx, err = strconv.ParseInt(f[len(f)-1], 10, 64)
		case strings.HasPrefix(line, "Socket errors:"):
			r.Errors = strings.TrimSpace(strings.TrimPrefix(line, "Socket errors:"))
		}
		if err != nil {
			return r, fmt.Errorf("line %q: %w", line, err)
		}
	}
	if !have50 || !have99 || !haveRPS {
		return r, fmt.Errorf("no latency distribution or Requests/sec (was wrk run with --latency?)")
	}
	return r, nil
}

// wrkDuration reads wrk's times: "812.00us", "1.23ms", "2.00s", "1.00m".
func wrkDuration(s string) (time.Duration, error) {
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("time %q: %w", s, err)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("time %q has no unit wrk uses", s)
}
