package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBusySolutionGrowsAndShrinks loads a solution that may grow to three
// replicas past its concurrency, and checks that the scaler adds replicas,
// that the gateway spreads requests over them, that no request fails, and
// that the extra replicas go once the load has stayed low.
func TestBusySolutionGrowsAndShrinks(t *testing.T) {
	a := StartAim(t, "--scale-down-delay", "3s")
	m := "name: grow\ncomponents:\n  - name: web\n    image: " + TestImage + "\nscaling: {max: 3, concurrency: 2, idle: 10m}\n"
	a.MustCLI("deploy", "-q", writeSolution(t, m, nil))
	if n := running(a, "grow"); n != 1 {
		t.Fatalf("%d containers running after deploy, want 1", n)
	}

	cl := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
		req.Host = "grow.localhost"
		resp, err := cl.Do(req)
		if err != nil {
			return -1, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	// Twelve clients, each with a slow request in flight all the time:
	// six replicas' worth at concurrency 2, capped at three.
	ctx, stop := context.WithTimeout(context.Background(), 12*time.Second)
	defer stop()
	var mu sync.Mutex
	codes := map[int]int{}
	hosts := map[string]int{}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, body := get("/sleep?d=300ms")
				mu.Lock()
				codes[code]++
				if f := strings.Fields(body); code == 200 && len(f) == 4 {
					hosts[f[3]]++
				}
				mu.Unlock()
			}
		}()
	}
	most := 0
	for ctx.Err() == nil {
		most = max(most, running(a, "grow"))
		time.Sleep(250 * time.Millisecond)
	}
	wg.Wait()
	if most != 3 {
		t.Errorf("at most %d containers ran under load, want 3 (scaling.max)", most)
	}
	if len(codes) != 1 || codes[200] == 0 {
		t.Errorf("statuses under load %v, want only 200", codes)
	}
	if len(hosts) != 3 {
		t.Errorf("requests were answered by %d replicas (%v), want 3", len(hosts), hosts)
	}
	t.Logf("under load: %v, by replica %v", codes, hosts)

	// A light load while it shrinks: nothing may fail as replicas leave.
	deadline := time.Now().Add(30 * time.Second)
	light := map[int]int{}
	for running(a, "grow") > 1 && time.Now().Before(deadline) {
		code, _ := get("/whoami")
		light[code]++
		time.Sleep(100 * time.Millisecond)
	}
	if n := running(a, "grow"); n != 1 {
		t.Fatalf("%d containers still running 30s after the load ended, want 1", n)
	}
	if len(light) > 1 || light[-1] > 0 {
		t.Errorf("statuses while shrinking %v, want only 200", light)
	}
	if code, body := get("/whoami"); code != 200 {
		t.Errorf("after shrinking: %d %s", code, body)
	}
	if !strings.Contains(a.Metrics(), `aim_solution_replicas{solution="grow"} 1`) {
		t.Errorf("/metrics does not report 1 replica for grow")
	}
}
