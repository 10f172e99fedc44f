// Package scaler decides when a solution sleeps: after its idle timeout
// without requests, unless a long-lived connection is still open (up to a
// cap, so that a forgotten tab doesn't keep it up forever). It also sizes
// awake solutions that may grow: a replica more as soon as the in-flight
// requests per replica pass the solution's concurrency, a replica less
// only once the load has stayed low for a while (Knative's autoscaler
// works the same way, with a stable window that damps scale-downs).
package scaler

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Awake is a solution that is serving now.
type Awake struct {
	Name string
	// Idle is the solution's idle timeout.
	Idle time.Duration
	// Min replicas; above 0 the solution never sleeps.
	Min int
	// Max replicas; at most 1 means the solution never grows.
	Max int
	// Concurrency is the in-flight requests per replica above which a
	// replica is added; 0 means the platform default.
	Concurrency int
	// Replicas serving now.
	Replicas int
}

// Solutions lists awake solutions, puts them to sleep and sizes them.
type Solutions interface {
	Awake() []Awake
	Sleep(ctx context.Context, name string) error
	ScaleTo(ctx context.Context, name string, replicas int) error
}

// Activity tells when a solution last had a request, how many are open
// now, and the most that were open at once since the last call to Peak.
type Activity interface {
	Activity(name string) (last time.Time, inflight int64, ok bool)
	Peak(name string) int64
}

// Config configures a Scaler.
type Config struct {
	// MaxIdleWithConnections is how long a solution with open connections
	// but no new request stays awake. Zero means 4h.
	MaxIdleWithConnections time.Duration
	// Every is how often idleness and load are judged. Zero means 1s.
	Every time.Duration
	// ScaleDownAfter is how long the load must stay low before a replica
	// is removed. Zero means 1m.
	ScaleDownAfter time.Duration
	// Concurrency is the default in-flight requests per replica. Zero
	// means 50.
	Concurrency int
	// Parallel bounds how many sleeps and resizes run at once; one that
	// finds every slot taken waits for a later tick. Zero means 16.
	Parallel int
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Scaler puts idle solutions to sleep and sizes busy ones. Each sleep
// and each resize runs on its own, so that none holds up another: a
// solution that ignores SIGTERM takes the engine's whole stop grace to
// sleep, and one that loads a model takes as long to gain a replica.
type Scaler struct {
	cfg  Config
	sols Solutions
	act  Activity
	// slots holds a token per sleep or resize running.
	slots chan struct{}
	// ops counts the sleeps and resizes running, for Run to wait for.
	ops sync.WaitGroup

	mu    sync.Mutex
	loads map[string]*load
	// sleeping holds the solutions whose Sleep runs, so that ticks meanwhile
	// do not ask again.
	sleeping map[string]bool
}

// load is what the scaler remembers of an awake solution that may grow.
type load struct {
	// samples are the replicas wanted at each recent tick, newest last,
	// back to ScaleDownAfter.
	samples []sample
	// changing is set while a ScaleTo runs, so that ticks don't pile up
	// calls for one solution.
	changing bool
	// since is when the replica count last changed.
	since time.Time
}

type sample struct {
	at   time.Time
	want int
}

// New builds a scaler.
func New(cfg Config, sols Solutions, act Activity) *Scaler {
	if cfg.MaxIdleWithConnections == 0 {
		cfg.MaxIdleWithConnections = 4 * time.Hour
	}
	if cfg.Every == 0 {
		cfg.Every = time.Second
	}
	if cfg.ScaleDownAfter == 0 {
		cfg.ScaleDownAfter = time.Minute
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 50
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	return &Scaler{cfg: cfg, sols: sols, act: act, slots: make(chan struct{}, cfg.Parallel),
		loads: map[string]*load{}, sleeping: map[string]bool{}}
}

// Run judges idleness and load every cfg.Every until ctx ends, then waits
// for the sleeps and resizes it started.
func (s *Scaler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	defer s.ops.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, name := range s.Idle() {
				s.sleep(ctx, name)
			}
			for name, n := range s.Sizes() {
				s.resize(ctx, name, n)
			}
		}
	}
}

// take claims a slot for a sleep or resize; false when all are taken.
// Called with s.mu held.
func (s *Scaler) take() bool {
	select {
	case s.slots <- struct{}{}:
		s.ops.Add(1)
		return true
	default:
		return false
	}
}

func (s *Scaler) release() {
	<-s.slots
	s.ops.Done()
}

// sleep calls Sleep without holding up the tick or the other sleeps:
// stopping a container takes up to the engine's stop grace. A solution
// whose Sleep runs is not asked again.
func (s *Scaler) sleep(ctx context.Context, name string) {
	s.mu.Lock()
	if s.sleeping[name] || !s.take() {
		s.mu.Unlock()
		return
	}
	s.sleeping[name] = true
	s.mu.Unlock()
	go func() {
		defer s.release()
		s.cfg.Logger.Info("sleeping idle solution", "solution", name)
		if err := s.sols.Sleep(ctx, name); err != nil {
			s.cfg.Logger.Error("sleeping", "solution", name, "err", err)
		}
		s.mu.Lock()
		delete(s.sleeping, name)
		s.mu.Unlock()
	}()
}

// resize calls ScaleTo without holding up the tick: starting a replica
// takes as long as the solution takes to answer.
func (s *Scaler) resize(ctx context.Context, name string, n int) {
	s.mu.Lock()
	l := s.loads[name]
	if l == nil || l.changing || s.sleeping[name] || !s.take() {
		s.mu.Unlock()
		return
	}
	l.changing = true
	s.mu.Unlock()
	go func() {
		defer s.release()
		err := s.sols.ScaleTo(ctx, name, n)
		if err != nil {
			s.cfg.Logger.Error("scaling", "solution", name, "replicas", n, "err", err)
		}
		s.mu.Lock()
		l.changing = false
		// Judge the new size afresh: samples taken with the old count say
		// nothing about the new one.
		l.samples = l.samples[:0]
		l.since = s.cfg.Now()
		s.mu.Unlock()
	}()
}

// Sizes samples the load of every awake solution that may grow and
// returns those whose replica count should change, with the new count.
// A solution grows at once when its peak in-flight requests per replica
// pass its concurrency; it shrinks only when every sample of the last
// ScaleDownAfter wanted fewer replicas, and then to the most any of them
// wanted.
func (s *Scaler) Sizes() map[string]int {
	now := s.cfg.Now()
	out := map[string]int{}
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, a := range s.sols.Awake() {
		floor := max(a.Min, 1)
		if a.Max <= floor {
			continue
		}
		seen[a.Name] = true
		l := s.loads[a.Name]
		if l == nil {
			l = &load{since: now}
			s.loads[a.Name] = l
		}
		if l.changing {
			continue
		}
		conc := a.Concurrency
		if conc <= 0 {
			conc = s.cfg.Concurrency
		}
		peak := s.act.Peak(a.Name)
		want := min(max(int((peak+int64(conc)-1)/int64(conc)), floor), a.Max)
		l.samples = append(l.samples, sample{at: now, want: want})
		cut := 0
		for cut < len(l.samples) && now.Sub(l.samples[cut].at) > s.cfg.ScaleDownAfter {
			cut++
		}
		l.samples = l.samples[cut:]
		switch {
		case want > a.Replicas:
			out[a.Name] = want
		case want < a.Replicas && now.Sub(l.since) >= s.cfg.ScaleDownAfter:
			most := 0
			for _, sm := range l.samples {
				most = max(most, sm.want)
			}
			if most < a.Replicas {
				out[a.Name] = most
			}
		}
	}
	for name, l := range s.loads {
		if !seen[name] && !l.changing {
			delete(s.loads, name) // asleep or removed: start afresh next time
		}
	}
	return out
}

// Idle returns the awake solutions that should sleep now.
func (s *Scaler) Idle() []string {
	now := s.cfg.Now()
	var out []string
	for _, a := range s.sols.Awake() {
		if a.Min > 0 || a.Idle <= 0 {
			continue
		}
		last, inflight, ok := s.act.Activity(a.Name)
		if !ok {
			continue
		}
		idle := now.Sub(last)
		limit := a.Idle
		if inflight > 0 {
			limit = max(a.Idle, s.cfg.MaxIdleWithConnections)
		}
		if idle >= limit {
			out = append(out, a.Name)
		}
	}
	return out
}
