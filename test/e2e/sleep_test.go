package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

func sleepyManifest(name, idle string, env string) string {
	m := "name: " + name + "\ncomponents:\n  - name: web\n    image: " + TestImage + "\n"
	if env != "" {
		m += "    env: {" + env + "}\n"
	}
	return m + "scaling: {idle: " + idle + "}\n"
}

// waitState polls `aim status` until the solution is in state.
func waitState(t *testing.T, a *Aim, name, state string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var st string
	for time.Now().Before(deadline) {
		st = a.MustCLI("status", name)
		if strings.Contains(st, "State:       "+state) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not become %s within %s:\n%s", name, state, within, st)
}

func running(a *Aim, name string) int {
	n := 0
	for _, c := range a.Containers(name) {
		if c.State == "running" {
			n++
		}
	}
	return n
}

// countStarts counts the engine's start events for a solution's
// containers while f runs.
func countStarts(t *testing.T, a *Aim, name string, f func()) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	since := strconv.FormatInt(time.Now().Unix()-1, 10)
	msgs, errs := docker.Events(ctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("event", "start"),
		filters.Arg("label", "dev.aim.managed="+a.Prefix), filters.Arg("label", "dev.aim.solution="+name))})
	var mu sync.Mutex
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-msgs:
				mu.Lock()
				n++
				mu.Unlock()
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	f()
	time.Sleep(time.Second) // let the engine deliver the last events
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return n
}

func TestIdleSleepsAndOneRequestWakes(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("nap", "2s", ""), nil))
	waitState(t, a, "nap", "sleeping", 15*time.Second)
	if n := running(a, "nap"); n != 0 {
		t.Fatalf("a sleeping solution has %d running containers", n)
	}
	// Bots and HEAD requests neither wake it...
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/", nil)
	req.Host = "nap.localhost"
	req.Header.Set("User-Agent", "kube-probe/1.32")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || running(a, "nap") != 0 {
		t.Errorf("a health checker got %d and woke the solution", resp.StatusCode)
	}
	// ...but one request does, and it is answered, marked as a cold start.
	var timing string
	starts := countStarts(t, a, "nap", func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/whoami", nil)
		req.Host = "nap.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("the waking request got %d", resp.StatusCode)
		}
		timing = resp.Header.Get("Server-Timing")
	})
	if starts != 1 {
		t.Errorf("the container started %d times, want 1", starts)
	}
	if !strings.HasPrefix(timing, "wake;dur=") {
		t.Errorf("Server-Timing = %q, want wake;dur=…", timing)
	}
	if st := a.MustCLI("status", "nap"); !strings.Contains(st, "ready") {
		t.Errorf("after the wake:\n%s", st)
	}
	// The wake is in the metrics, timed by phase.
	m := a.Metrics()
	for _, want := range []string{
		`aim_wakes_total{result="ok",solution="nap"} 1`,
		`aim_wake_duration_seconds_count{phase="start",solution="nap"} 1`,
		`aim_wake_duration_seconds_count{phase="ready",solution="nap"} 1`,
		`aim_requests_held_total{solution="nap"} 1`,
		`aim_solution_state{solution="nap",state="ready"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// And it goes back to sleep.
	waitState(t, a, "nap", "sleeping", 15*time.Second)
	if m := a.Metrics(); !strings.Contains(m, `aim_solution_state{solution="nap",state="sleeping"} 1`) {
		t.Errorf("/metrics does not show the solution asleep")
	}
}

// Metrics returns the server's /metrics page.
func (a *Aim) Metrics() string {
	a.t.Helper()
	resp, err := http.Get("http://" + a.Addr + "/metrics")
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// hammer sends n concurrent API requests and counts the statuses.
func hammer(t *testing.T, a *Aim, name string, n int) (map[int]int, []string) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 3 * time.Minute}
	var mu sync.Mutex
	codes := map[int]int{}
	var retryAfter []string
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/whoami?i=%d", a.Addr, i), nil)
			req.Host = name + ".localhost"
			resp, err := cl.Do(req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[-1]++
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 {
				retryAfter = append(retryAfter, resp.Header.Get("Retry-After"))
			}
		}(i)
	}
	close(start)
	wg.Wait()
	return codes, retryAfter
}

func TestFiveHundredRequestsWakeOnce(t *testing.T) {
	a := StartAim(t, "--max-pending", "600", "--rps", "0")
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("crowd", "2s", ""), nil))
	waitState(t, a, "crowd", "sleeping", 15*time.Second)
	var codes map[int]int
	starts := countStarts(t, a, "crowd", func() { codes, _ = hammer(t, a, "crowd", 500) })
	if codes[200] != 500 {
		t.Errorf("statuses %v, want 500×200", codes)
	}
	if starts != 1 {
		t.Errorf("the container started %d times, want exactly 1", starts)
	}
}

func TestFullQueueGets503(t *testing.T) {
	a := StartAim(t, "--max-pending", "10", "--rps", "0")
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("queue", "2s", ""), nil))
	waitState(t, a, "queue", "sleeping", 15*time.Second)
	codes, retry := hammer(t, a, "queue", 100)
	if codes[200]+codes[503] != 100 || codes[503] == 0 || codes[200] < 10 {
		t.Errorf("statuses %v: want at least 10×200 and the rest 503", codes)
	}
	if m := a.Metrics(); !strings.Contains(m, `aim_requests_refused_total{reason="queue_full",solution="queue"} `+strconv.Itoa(codes[503])) {
		t.Errorf("/metrics does not count the %d refused requests", codes[503])
	}
	for _, r := range retry {
		if r == "" {
			t.Errorf("a 503 without Retry-After")
			break
		}
	}
}

func TestWebSocketKeepsAwake(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("chat", "2s", ""), nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+a.Addr+"/ws", &websocket.DialOptions{Host: "chat.localhost"})
	if err != nil {
		t.Fatalf("WebSocket through the gateway: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	time.Sleep(5 * time.Second) // past the idle timeout, the socket open
	if st := a.MustCLI("status", "chat"); !strings.Contains(st, "State:       ready") {
		t.Fatalf("an open WebSocket did not keep the solution awake:\n%s", st)
	}
	if _, msg, err := func() (websocket.MessageType, []byte, error) {
		if err := c.Write(ctx, websocket.MessageText, []byte("still")); err != nil {
			return 0, nil, err
		}
		return c.Read(ctx)
	}(); err != nil || string(msg) != "still" {
		t.Fatalf("the socket broke while awake: %q %v", msg, err)
	}
	c.Close(websocket.StatusNormalClosure, "bye")
	waitState(t, a, "chat", "sleeping", 15*time.Second)
}

func TestCrashWhileWakingGives504AndRetries(t *testing.T) {
	a := StartAim(t, "--wake-timeout", "20s")
	crashAt := time.Now().Add(8 * time.Second).Unix()
	env := fmt.Sprintf("MODE: crash-after, CRASH_AFTER_UNIX: %q", strconv.FormatInt(crashAt, 10))
	a.MustCLI("deploy", "-q", writeSolution(t, sleepyManifest("fragile", "2s", env), nil))
	waitState(t, a, "fragile", "sleeping", 15*time.Second)
	time.Sleep(time.Until(time.Unix(crashAt+1, 0)))
	for i := 0; i < 2; i++ {
		start := time.Now()
		code, body := a.Get("fragile", "/whoami")
		// The exit code shows unless the engine restarted the container
		// before aim looked (a loaded machine); the restart count then.
		exited := strings.Contains(body, "exited while starting with code 4") || strings.Contains(body, "exited while starting (the engine has restarted it")
		if code != http.StatusGatewayTimeout || !exited || !strings.Contains(body, "model file is corrupt") {
			t.Errorf("wake %d: %d %s", i, code, body)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("wake %d answered after %s, beyond the wake timeout", i, d)
		}
	}
	if n := running(a, "fragile"); n != 0 {
		t.Errorf("a failed wake left %d containers running", n)
	}
}
