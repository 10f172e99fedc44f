package e2e

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// usageTotals is the total row of `aim usage`.
type usageTotals struct{ Views, Visitors, API int }

// AC4 of issue 14: after N requests from M distinct clients, some page
// views and some API calls, `aim usage` reports N and M; after SIGKILL
// and a restart on the same data the counts written are still there, and
// what came after the last write is the most that is lost.
func TestUsageCounts(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "tally", "--image", TestImage)
	if got := usageOf(t, a, "tally"); got != (usageTotals{}) {
		t.Fatalf("before any request tally's usage is %+v", got)
	}

	// Client i sends i+1 page views and i+2 API calls, each from its own
	// loopback address (127.0.0.2, 127.0.0.3, …: all loopback on Linux).
	const clients = 4
	var want usageTotals
	for i := range clients {
		c := clientAt(t, net.IPv4(127, 0, 0, byte(2+i)))
		for range i + 1 {
			visit(t, c, a, "tally", "/", "text/html,application/xhtml+xml")
			want.Views++
		}
		for j := range i + 2 {
			path := "/whoami"
			if j%2 == 1 {
				path = "/headers"
			}
			visit(t, c, a, "tally", path, "application/json")
			want.API++
		}
	}
	want.Visitors = clients
	t.Logf("sent %d requests from %d clients: %+v", want.Views+want.API, clients, want)

	// Past one flush interval (10 s) the store has them all.
	start := time.Now()
	got := waitUsage(t, a, "tally", want, 25*time.Second)
	t.Logf("aim usage reports %+v after %s", got, time.Since(start).Round(100*time.Millisecond))
	if got != want {
		t.Fatalf("aim usage reports %+v, want %+v", got, want)
	}

	// More requests, then a crash before the next flush can be counted
	// on: they may be lost, nothing written before may.
	late := clientAt(t, net.IPv4(127, 0, 0, 50))
	const extra = 3
	for range extra {
		visit(t, late, a, "tally", "/whoami", "application/json")
	}
	a.Kill()
	a.Start()
	after := usageOf(t, a, "tally")
	t.Logf("after SIGKILL and a restart aim usage reports %+v", after)
	if after.Views != want.Views || after.API < want.API || after.API > want.API+extra ||
		after.Visitors < want.Visitors || after.Visitors > want.Visitors+1 {
		t.Errorf("after SIGKILL and a restart aim usage reports %+v; want %+v, with at most the %d API calls from one more client after the last write lost",
			after, want, extra)
	}
}

// clientAt is an HTTP client whose connections come from ip.
func clientAt(t *testing.T, ip net.IP) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// visit GETs path of solution through the gateway with c, asking for
// accept.
func visit(t *testing.T, c *http.Client, a *Aim, solution, path, accept string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
	req.Host = solution + ".localhost"
	req.Header.Set("Accept", accept)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", solution, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s%s: %s", solution, path, resp.Status)
	}
}

// waitUsage polls `aim usage` until it reports want, or within passes.
func waitUsage(t *testing.T, a *Aim, name string, want usageTotals, within time.Duration) usageTotals {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := usageOf(t, a, name)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// usageOf reads the total row of `aim usage NAME --since 2d`:
// "total VIEWS VISITORS API ERRORS WAKES".
func usageOf(t *testing.T, a *Aim, name string) usageTotals {
	t.Helper()
	out := a.MustCLI("usage", name, "--since", "2d")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "total" {
			continue
		}
		var n [3]int
		for i := range n {
			v, err := strconv.Atoi(f[i+1])
			if err != nil {
				t.Fatalf("aim usage's total row %q: %v", line, err)
			}
			n[i] = v
		}
		return usageTotals{Views: n[0], Visitors: n[1], API: n[2]}
	}
	t.Fatalf("aim usage printed no total row:\n%s", out)
	return usageTotals{}
}
