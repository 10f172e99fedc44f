package scaler

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

type fakeSols []Awake

func (f fakeSols) Awake() []Awake                      { return f }
func (f fakeSols) Sleep(context.Context, string) error { return nil }
func (f fakeSols) ScaleTo(context.Context, string, int) error {
	return nil
}

type act struct {
	last     time.Time
	inflight int64
}

type fakeAct map[string]act

func (f fakeAct) Activity(name string) (time.Time, int64, bool) {
	a, ok := f[name]
	return a.last, a.inflight, ok
}

func (f fakeAct) Peak(name string) int64 { return f[name].inflight }

func TestIdle(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sol  Awake
		act  act
		want bool
	}{
		{"busy", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-10 * time.Second)}, false},
		{"idle past timeout", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-61 * time.Second)}, true},
		{"exactly at timeout", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-time.Minute)}, true},
		{"min replicas never sleep", Awake{Name: "s", Idle: time.Minute, Min: 1}, act{last: now.Add(-time.Hour)}, false},
		{"open connection keeps awake", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-time.Hour), inflight: 1}, false},
		{"open connection past the cap", Awake{Name: "s", Idle: time.Minute}, act{last: now.Add(-5 * time.Hour), inflight: 1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Config{Now: func() time.Time { return now }}, fakeSols{tc.sol}, fakeAct{"s": tc.act})
			got := slices.Contains(s.Idle(), "s")
			if got != tc.want {
				t.Errorf("idle = %v, want %v", got, tc.want)
			}
		})
	}
}

// sizeStep is one second of load: the most requests in flight during it,
// the replicas serving when it is sampled, and the replica count Sizes
// should ask for (0: no change).
type sizeStep struct {
	peak     int64
	replicas int
	want     int
}

func repeat(s sizeStep, n int) []sizeStep {
	out := make([]sizeStep, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func steps(parts ...[]sizeStep) []sizeStep {
	var out []sizeStep
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestSizes plays a series of load samples, one a second, and checks the
// replica count the scaler asks for after each.
func TestSizes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	quiet3 := sizeStep{0, 3, 0}
	for _, tc := range []struct {
		name  string
		sol   Awake
		steps []sizeStep
	}{
		{"one replica never grows", Awake{Name: "s", Max: 1, Concurrency: 10}, []sizeStep{{100, 1, 0}}},
		{"below concurrency stays", Awake{Name: "s", Max: 4, Concurrency: 10}, []sizeStep{{10, 1, 0}, {5, 1, 0}}},
		{"past concurrency grows at once", Awake{Name: "s", Max: 4, Concurrency: 10}, []sizeStep{{11, 1, 2}}},
		{"grows to what the load needs, capped at max", Awake{Name: "s", Max: 4, Concurrency: 10}, []sizeStep{{95, 1, 4}}},
		{"default concurrency", Awake{Name: "s", Max: 4}, []sizeStep{{50, 1, 0}, {51, 1, 2}}},
		{"min is the floor", Awake{Name: "s", Min: 2, Max: 4, Concurrency: 10}, []sizeStep{{0, 2, 0}}},
		{"shrinks only after a quiet minute", Awake{Name: "s", Max: 4, Concurrency: 10},
			steps(repeat(quiet3, 60), []sizeStep{{0, 3, 1}})},
		{"a busy second in the window holds the size", Awake{Name: "s", Max: 4, Concurrency: 10},
			steps(repeat(quiet3, 30), []sizeStep{{25, 3, 0}}, repeat(quiet3, 30))},
		{"shrinks to the most the window needed", Awake{Name: "s", Max: 4, Concurrency: 10},
			steps([]sizeStep{{15, 3, 0}}, repeat(quiet3, 59), []sizeStep{{0, 3, 2}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			sols := fakeSols{tc.sol}
			load := fakeAct{}
			s := New(Config{Now: func() time.Time { return now }}, sols, load)
			for i, st := range tc.steps {
				sols[0].Replicas = st.replicas
				load["s"] = act{inflight: st.peak}
				got := s.Sizes()["s"]
				if got != st.want {
					t.Fatalf("second %d (peak %d, %d replicas): asked for %d replicas, want %d", i, st.peak, st.replicas, got, st.want)
				}
				now = now.Add(time.Second)
			}
		})
	}
}

// slowSols is a set of awake solutions whose Sleep blocks, for those in
// block, until release is closed; a solution that has slept leaves the
// awake list, as the controller's does.
type slowSols struct {
	block   map[string]bool
	release chan struct{}

	mu      sync.Mutex
	awake   []Awake
	calls   map[string]int
	running int // Sleeps running now
	most    int // the most that ran at once
	slept   chan string
}

func newSlowSols(names []string, block ...string) *slowSols {
	f := &slowSols{block: map[string]bool{}, release: make(chan struct{}), calls: map[string]int{}, slept: make(chan string, len(names))}
	for _, n := range names {
		f.awake = append(f.awake, Awake{Name: n, Idle: time.Second})
	}
	for _, n := range block {
		f.block[n] = true
	}
	return f
}

func (f *slowSols) Awake() []Awake {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.awake)
}

func (f *slowSols) Sleep(ctx context.Context, name string) error {
	f.mu.Lock()
	f.calls[name]++
	f.running++
	f.most = max(f.most, f.running)
	f.mu.Unlock()
	if f.block[name] {
		select {
		case <-f.release:
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	f.running--
	f.awake = slices.DeleteFunc(f.awake, func(a Awake) bool { return a.Name == name })
	f.mu.Unlock()
	f.slept <- name
	return nil
}

func (f *slowSols) ScaleTo(context.Context, string, int) error { return nil }

// idleFor is activity that says every solution has been idle for long.
type idleFor []string

func (i idleFor) Activity(string) (time.Time, int64, bool) {
	return time.Now().Add(-time.Hour), 0, true
}
func (i idleFor) Peak(string) int64 { return 0 }

// TestSleepsDoNotWait reproduces issue 21: the scaler slept solutions one
// at a time, so one that ignores SIGTERM (its stop takes the engine's
// whole grace) kept the others awake past their idle time.
func TestSleepsDoNotWait(t *testing.T) {
	names := []string{"stubborn", "a", "b", "c"}
	sols := newSlowSols(names, "stubborn")
	s := New(Config{Every: 10 * time.Millisecond}, sols, idleFor(names))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	got := map[string]bool{}
	deadline := time.After(2 * time.Second)
	for len(got) < 3 {
		select {
		case n := <-sols.slept:
			got[n] = true
		case <-deadline:
			t.Fatalf("slept %v while stubborn's stop runs; want a, b and c", got)
		}
	}
	if got["stubborn"] {
		t.Fatal("stubborn slept though its Sleep blocks")
	}
	time.Sleep(50 * time.Millisecond) // ticks while stubborn's stop runs
	close(sols.release)
	if n := <-sols.slept; n != "stubborn" {
		t.Fatalf("then %s slept, want stubborn", n)
	}
	cancel()
	<-done
	sols.mu.Lock()
	defer sols.mu.Unlock()
	for _, n := range names {
		if sols.calls[n] != 1 {
			t.Errorf("%s: Sleep called %d times, want once (not again while its stop runs)", n, sols.calls[n])
		}
	}
}

// TestSleepsBounded: no more sleeps run at once than Parallel; the others
// wait for a slot and run on a later tick.
func TestSleepsBounded(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e"}
	sols := newSlowSols(names, names...)
	s := New(Config{Every: 10 * time.Millisecond, Parallel: 2}, sols, idleFor(names))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(100 * time.Millisecond)
	sols.mu.Lock()
	running := sols.running
	sols.mu.Unlock()
	if running != 2 {
		t.Errorf("%d sleeps run, want 2 (Parallel)", running)
	}
	close(sols.release)
	for range names {
		select {
		case <-sols.slept:
		case <-time.After(2 * time.Second):
			t.Fatal("not every solution slept once slots freed")
		}
	}
	cancel()
	<-done
	if sols.most > 2 {
		t.Errorf("%d sleeps ran at once, want at most 2", sols.most)
	}
}
