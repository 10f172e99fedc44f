package gateway

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Refusal reasons, as the aim_requests_refused_total metric names them.
const (
	refusedRate      = iota // over the solution's requests per second
	refusedBody             // body over the solution's limit
	refusedQueueFull        // too many requests held while it wakes
	refusedWakeFailed
	refusedHoldTimeout
	refusedAuth // a private solution's request without a credential it admits
	nRefusals
)

var refusalNames = [nRefusals]string{"rate_limited", "body_too_large", "queue_full", "wake_failed", "hold_timeout", "not_admitted"}

// latencyBuckets are the upper bounds of the request duration histogram,
// in seconds.
var latencyBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// stats are one solution's request counters. They live in the route and
// are plain atomics, so counting costs a request a few uncontended adds;
// the collector turns them into metrics when Prometheus scrapes.
type stats struct {
	byClass  [6]atomic.Uint64 // 1xx..5xx at 1..5; anything else at 0
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	refused  [nRefusals]atomic.Uint64
	buckets  [len(latencyBuckets) + 1]atomic.Uint64 // the last is +Inf
	sumNanos atomic.Uint64
	// retried counts held requests sent again (forwardHeld), by the
	// status dropped: 502, 503, 504 at 0, 1, 2.
	retried [3]atomic.Uint64
}

func (s *stats) observe(status int, d time.Duration, in, out int64) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	s.byClass[c].Add(1)
	if in > 0 {
		s.bytesIn.Add(uint64(in))
	}
	if out > 0 {
		s.bytesOut.Add(uint64(out))
	}
	sec := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && sec > latencyBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
	s.sumNanos.Add(uint64(d))
}

func (s *stats) refuse(reason int) { s.refused[reason].Add(1) }

// retry counts a held request sent again after the answer code.
func (s *stats) retry(code int) { s.retried[code-http.StatusBadGateway].Add(1) }

// seen is true once the solution had a request.
func (s *stats) seen() bool {
	for i := range s.byClass {
		if s.byClass[i].Load() > 0 {
			return true
		}
	}
	for i := range s.refused {
		if s.refused[i].Load() > 0 {
			return true
		}
	}
	return false
}

var (
	descRequests = prometheus.NewDesc("aim_http_requests_total",
		"Requests for each solution that the gateway answered or proxied, by status class.", []string{"solution", "code"}, nil)
	descDuration = prometheus.NewDesc("aim_http_request_duration_seconds",
		"How long the gateway took to answer each solution's requests, holding and proxying included.", []string{"solution"}, nil)
	descBytesIn = prometheus.NewDesc("aim_http_request_bytes_total",
		"Request body bytes the gateway read for each solution.", []string{"solution"}, nil)
	descBytesOut = prometheus.NewDesc("aim_http_response_bytes_total",
		"Response body bytes the gateway wrote for each solution.", []string{"solution"}, nil)
	descInflight = prometheus.NewDesc("aim_http_requests_in_flight",
		"Requests being proxied to each solution now, open WebSockets and event streams among them.", []string{"solution"}, nil)
	descRefused = prometheus.NewDesc("aim_requests_refused_total",
		"Requests the gateway refused, by reason: rate_limited (429), body_too_large (413), queue_full (503 while waking), wake_failed and hold_timeout (504), not_admitted (401 or 403 of a private solution).", []string{"solution", "reason"}, nil)
	descRetried = prometheus.NewDesc("aim_held_requests_retried_total",
		"Held requests (GET, HEAD) the gateway sent again, once, because the solution answered them with the code (502, 503, 504) just after its wake: its readiness rule passes too early (ready.path in aim.yaml).", []string{"solution", "code"}, nil)
)

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Describe implements prometheus.Collector.
func (t *Table) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descBytesIn, descBytesOut, descInflight, descRefused, descRetried} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads every route's counters.
func (t *Table) Collect(ch chan<- prometheus.Metric) {
	t.each(func(r *route) {
		s := &r.stats
		if !s.seen() && r.inflight.Load() == 0 {
			return // thousands of solutions nobody visited cost no series
		}
		for c, name := range classNames {
			if n := s.byClass[c].Load(); n > 0 || c == 2 {
				ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), r.name, name)
			}
		}
		var count uint64
		cum := make(map[float64]uint64, len(latencyBuckets))
		for i, ub := range latencyBuckets {
			count += s.buckets[i].Load()
			cum[ub] = count
		}
		count += s.buckets[len(latencyBuckets)].Load()
		sum := float64(s.sumNanos.Load()) / 1e9
		ch <- prometheus.MustNewConstHistogram(descDuration, count, sum, cum, r.name)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(s.bytesIn.Load()), r.name)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(s.bytesOut.Load()), r.name)
		ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(r.inflight.Load()), r.name)
		for i, name := range refusalNames {
			if n := s.refused[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(n), r.name, name)
			}
		}
		for i := range s.retried {
			if n := s.retried[i].Load(); n > 0 {
				ch <- prometheus.MustNewConstMetric(descRetried, prometheus.CounterValue, float64(n), r.name, strconv.Itoa(http.StatusBadGateway+i))
			}
		}
	})
}
