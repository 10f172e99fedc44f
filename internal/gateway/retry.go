package gateway

import (
	"net/http"
	"time"
)

// The held request's safety net (issue 20). A component's readiness rule
// may pass before it can serve: GET / answers while the API still says
// 503, as Prometheus does until its storage is open. The request that
// waited for the wake is the first to find out. When it is idempotent and
// nothing of the answer has gone out, the gateway sends it once more after
// a pause instead of passing a 502, 503 or 504 on. This is not the
// readiness rule: a provider names ready.path in aim.yaml (aim check
// proposes one), and the count of these retries says who should.

const (
	// heldRetryWindow is how soon after the wake an answer must come to
	// be retried; later, the component was up and answered as it meant.
	heldRetryWindow = 5 * time.Second
	// heldRetryPause is the wait before the retry: long enough for a
	// server that opens its storage or loads a small model just after it
	// listens (the e2e test's image takes two seconds), short next to the
	// wake the client has already waited for.
	heldRetryPause = 2500 * time.Millisecond
)

// retriable is true for a request that can be sent twice: a GET or HEAD
// without a body, not opening a stream.
func retriable(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.Body == nil || r.Body == http.NoBody) && !isStream(r)
}

// forwardHeld proxies a request that waited for a wake to b, and sends it
// again, once, when the component answered 502, 503 or 504 within
// heldRetryWindow; the second answer goes to the client as it is.
func (g *Gateway) forwardHeld(w *writer, r *http.Request, rt *route, b *backend, bot bool) {
	hw := &heldWriter{w: w, h: http.Header{}, until: time.Now().Add(heldRetryWindow)}
	g.forward(hw, r, b)
	if hw.dropped == 0 {
		return
	}
	rt.stats.retry(hw.dropped)
	g.log.Info("retrying a held request answered with a server error just after the wake (the solution's readiness rule may pass too early: ready.path in aim.yaml)",
		"solution", rt.name, "status", hw.dropped, "path", r.URL.Path)
	t := time.NewTimer(g.heldRetryPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		w.WriteHeader(499)
		return
	}
	// The solution may have gone meanwhile; backendFor answers then.
	if b, _ = g.backendFor(w, r, rt, bot); b != nil {
		g.forward(w, r, b)
	}
}

// heldWriter passes an answer on to w, unless it is a 502, 503 or 504
// that came before until: that one it drops, head and body, for the
// request to be sent again.
type heldWriter struct {
	w     *writer
	h     http.Header
	until time.Time
	// dropped is the status of the answer dropped, 0 if none; wrote is
	// true once an answer's head went to w.
	dropped int
	wrote   bool
}

func (hw *heldWriter) Header() http.Header { return hw.h }

func (hw *heldWriter) WriteHeader(code int) {
	switch {
	case hw.wrote || hw.dropped != 0:
		return
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		if time.Now().Before(hw.until) {
			hw.dropped = code
			return
		}
	}
	dst := hw.w.Header()
	for k, vv := range hw.h {
		dst[k] = vv
	}
	hw.w.WriteHeader(code)
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational answer (103 Early Hints) is no answer yet,
		// and its headers are not the final answer's.
		for k := range hw.h {
			delete(dst, k)
		}
		return
	}
	hw.wrote = true
}

func (hw *heldWriter) Write(p []byte) (int, error) {
	if !hw.wrote && hw.dropped == 0 {
		hw.WriteHeader(http.StatusOK)
	}
	if hw.dropped != 0 {
		return len(p), nil
	}
	return hw.w.Write(p)
}

// FlushError lets http.ResponseController flush what goes to the client.
func (hw *heldWriter) FlushError() error {
	if hw.dropped != 0 {
		return nil
	}
	return http.NewResponseController(hw.w).Flush()
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (hw *heldWriter) Unwrap() http.ResponseWriter { return hw.w }
