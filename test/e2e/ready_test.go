package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Issue 20: a woken solution's first request got the app's own 503. The
// testserver's late-api mode answers / at once and everything else with
// 503 for its first two seconds, as Prometheus does until its storage is
// open.

// lateManifest is a late-api solution that sleeps after 2s, judged ready
// by ready (a ready.path) or, when it is empty, by the default rule.
func lateManifest(name, ready string) string {
	m := "name: " + name + "\ncomponents:\n  - name: web\n    image: " + TestImage + "\n    env: {MODE: late-api}\n"
	if ready != "" {
		m += "    ready: {path: " + ready + "}\n"
	}
	return m + "scaling: {idle: 2s}\n"
}

// wakeMillis reads the wake's duration from a Server-Timing header.
func wakeMillis(t *testing.T, timing string) float64 {
	t.Helper()
	v, ok := strings.CutPrefix(timing, "wake;dur=")
	ms, err := strconv.ParseFloat(v, 64)
	if !ok || err != nil {
		t.Fatalf("Server-Timing %q, want wake;dur=…", timing)
	}
	return ms
}

// With ready.path, the wake waits until the API can serve: the request
// that wakes the solution gets 200 from its first attempt.
func TestReadyPathHoldsTheWakingRequest(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, lateManifest("late", "/-/ready"), nil))
	waitState(t, a, "late", "sleeping", 15*time.Second)
	code, h, body := send(t, a, http.MethodGet, "late", "/whoami", "", nil)
	if code != http.StatusOK {
		t.Fatalf("the waking request got %d: %s", code, body)
	}
	// The wake took the API's two seconds: it waited for /-/ready.
	if ms := wakeMillis(t, h.Get("Server-Timing")); ms < 1500 {
		t.Errorf("the wake took %.0fms; it cannot have waited for /-/ready", ms)
	}
	if m := a.Metrics(); strings.Contains(m, `aim_held_requests_retried_total{code="503",solution="late"}`) {
		t.Errorf("the request was retried: the wake did not wait for the ready.path")
	}
}

// Without ready.path, the wake is done when / answers; the gateway's
// safety net sends the held GET again and it gets 200, while a held POST
// gets the app's 503 unchanged.
func TestHeldGetIsRetriedAfterAnEarlyWake(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, lateManifest("early", ""), nil))
	waitState(t, a, "early", "sleeping", 15*time.Second)
	if code, h, body := send(t, a, http.MethodGet, "early", "/whoami", "", nil); code != http.StatusOK {
		t.Errorf("the waking GET got %d (%s): %s", code, h.Get("Server-Timing"), body)
	}
	if m := a.Metrics(); !strings.Contains(m, `aim_held_requests_retried_total{code="503",solution="early"} 1`) {
		t.Errorf("/metrics does not count the retry")
	}
	waitState(t, a, "early", "sleeping", 15*time.Second)
	code, h, body := send(t, a, http.MethodPost, "early", "/echo", "text/plain", []byte("x"))
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "not ready: opening storage") {
		t.Errorf("the waking POST got %d (%s) %q, want the app's 503", code, h.Get("Server-Timing"), body)
	}
	wakeMillis(t, h.Get("Server-Timing"))
	if m := a.Metrics(); !strings.Contains(m, `aim_held_requests_retried_total{code="503",solution="early"} 1`) {
		t.Errorf("/metrics counts a retry of the POST")
	}
}
