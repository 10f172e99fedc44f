package inquiry

import (
	"sync"
	"time"
)

// Limiter bounds how many inquiries one client and one solution may send
// in a window, so that the contact form cannot flood a provider or the
// store. It is in memory: each API replica counts its own (a client
// behind a load balancer that spreads it gets at most replicas × the
// limit), which docs/roles.md states.
type Limiter struct {
	// PerClient and PerSolution are the inquiries allowed per Window.
	PerClient, PerSolution int
	Window                 time.Duration
	now                    func() time.Time

	mu      sync.Mutex
	clients map[string]*window
	sols    map[string]*window
}

type window struct {
	start time.Time
	n     int
}

// NewLimiter allows perClient inquiries per client and perSolution per
// solution in each window.
func NewLimiter(perClient, perSolution int, win time.Duration) *Limiter {
	return &Limiter{PerClient: perClient, PerSolution: perSolution, Window: win, now: time.Now,
		clients: map[string]*window{}, sols: map[string]*window{}}
}

// Allow takes one inquiry of client about solution if both have room, and
// says which limit refused it otherwise ("client" or "solution") and when
// to try again.
func (l *Limiter) Allow(client, solution string) (ok bool, which string, retry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	c, s := l.get(l.clients, client, now), l.get(l.sols, solution, now)
	switch {
	case c.n >= l.PerClient:
		return false, "client", c.start.Add(l.Window).Sub(now)
	case s.n >= l.PerSolution:
		return false, "solution", s.start.Add(l.Window).Sub(now)
	}
	c.n++
	s.n++
	if len(l.clients) > 100_000 {
		l.sweep(now)
	}
	return true, "", 0
}

func (l *Limiter) get(m map[string]*window, key string, now time.Time) *window {
	w := m[key]
	if w == nil || now.Sub(w.start) >= l.Window {
		w = &window{start: now}
		m[key] = w
	}
	return w
}

// sweep drops windows that are over, bounding the memory a flood of
// clients takes.
func (l *Limiter) sweep(now time.Time) {
	for _, m := range []map[string]*window{l.clients, l.sols} {
		for k, w := range m {
			if now.Sub(w.start) >= l.Window {
				delete(m, k)
			}
		}
	}
}
