// Package metrics holds aim's Prometheus metrics, so that the gateway and
// the controller record into one registry that /metrics serves.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the platform's metrics. A nil *Metrics records nothing, so
// parts can be used without it in unit tests.
type Metrics struct {
	Registry *prometheus.Registry

	Wakes        *prometheus.CounterVec   // solution, result
	WakeDuration *prometheus.HistogramVec // solution, phase
	Held         *prometheus.CounterVec   // solution

	// OnWake, when set, is told of each successful wake and its total
	// time (the providers' usage counts; internal/usage). Set it before
	// anything wakes.
	OnWake func(solution string, d time.Duration)

	// states holds each solution's state and replicas, read at scrape
	// time: with thousands of solutions, a map entry each costs far less
	// than a gauge series per state.
	mu     sync.Mutex
	states map[string]solutionState
}

type solutionState struct {
	state    string
	replicas int
}

var (
	descState = prometheus.NewDesc("aim_solution_state",
		"1 for the state each solution is in (one series per solution; other states are absent).", []string{"solution", "state"}, nil)
	descReplicas = prometheus.NewDesc("aim_solution_replicas",
		"Ready replicas of each solution's public components.", []string{"solution"}, nil)
)

// stateCollector exports the states map.
type stateCollector struct{ m *Metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descState; ch <- descReplicas }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	for name, st := range c.m.states {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, 1, name, st.state)
		ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(st.replicas), name)
	}
}

// New registers aim's metrics, with Go and process metrics, in a new
// registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Wakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aim_wakes_total", Help: "Wakes of sleeping solutions, by result (ok, failed).",
		}, []string{"solution", "result"}),
		WakeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "aim_wake_duration_seconds", Help: "How long wakes took, by phase: start (the runtime starting the containers), ready (from started to the first ready answer), total.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 120},
		}, []string{"solution", "phase"}),
		Held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aim_requests_held_total", Help: "Requests held while their solution started or woke.",
		}, []string{"solution"}),
		states: map[string]solutionState{},
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Wakes, m.WakeDuration, m.Held, stateCollector{m})
	return m
}

// SetState marks a solution's current state.
func (m *Metrics) SetState(solution, state string, replicas int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.states[solution] = solutionState{state, replicas}
	m.mu.Unlock()
}

// Forget drops a removed solution's series.
func (m *Metrics) Forget(solution string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{"solution": solution}
	m.Wakes.DeletePartialMatch(l)
	m.WakeDuration.DeletePartialMatch(l)
	m.Held.DeletePartialMatch(l)
	m.mu.Lock()
	delete(m.states, solution)
	m.mu.Unlock()
}

// Wake records a wake's phases in seconds; failed wakes count but are
// not timed.
func (m *Metrics) Wake(solution string, ok bool, start, ready float64) {
	if m == nil {
		return
	}
	if !ok {
		m.Wakes.WithLabelValues(solution, "failed").Inc()
		return
	}
	m.Wakes.WithLabelValues(solution, "ok").Inc()
	m.WakeDuration.WithLabelValues(solution, "start").Observe(start)
	m.WakeDuration.WithLabelValues(solution, "ready").Observe(ready)
	m.WakeDuration.WithLabelValues(solution, "total").Observe(start + ready)
	if m.OnWake != nil {
		m.OnWake(solution, time.Duration((start+ready)*float64(time.Second)))
	}
}

// HeldRequest counts a request held for a starting solution.
func (m *Metrics) HeldRequest(solution string) {
	if m != nil {
		m.Held.WithLabelValues(solution).Inc()
	}
}
