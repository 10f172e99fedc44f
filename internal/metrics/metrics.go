// Package metrics holds aim's Prometheus metrics, so that the gateway and
// the controller record into one registry that /metrics serves.
package metrics

import (
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
	State        *prometheus.GaugeVec     // solution, state
	Replicas     *prometheus.GaugeVec     // solution
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
		State: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aim_solution_state", Help: "1 for the state each solution is in.",
		}, []string{"solution", "state"}),
		Replicas: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "aim_solution_replicas", Help: "Ready replicas of each solution's public components.",
		}, []string{"solution"}),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Wakes, m.WakeDuration, m.Held, m.State, m.Replicas)
	return m
}

// States are the values aim_solution_state takes.
var States = []string{"deploying", "starting", "ready", "stopping", "sleeping", "waking", "failed"}

// SetState marks a solution's current state.
func (m *Metrics) SetState(solution, state string, replicas int) {
	if m == nil {
		return
	}
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		m.State.WithLabelValues(solution, s).Set(v)
	}
	m.Replicas.WithLabelValues(solution).Set(float64(replicas))
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
	m.State.DeletePartialMatch(l)
	m.Replicas.DeletePartialMatch(l)
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
}

// HeldRequest counts a request held for a starting solution.
func (m *Metrics) HeldRequest(solution string) {
	if m != nil {
		m.Held.WithLabelValues(solution).Inc()
	}
}
