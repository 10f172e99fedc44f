package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// readyPaths are the well-known readiness and health paths the readiness
// rule probes under each of a component's path prefixes, in the order it
// prefers them when it proposes a ready.path.
var readyPaths = []string{"-/ready", "ready", "readyz", "healthz", "health"}

const (
	// readyEvery is the pause between the readiness rule's rounds.
	readyEvery = 100 * time.Millisecond
	// maxAPIPaths bounds the OpenAPI document's GET paths it probes.
	maxAPIPaths = 10
	// maxListed bounds the paths evidence names.
	maxListed = 4
)

// ProbeReady asks addr once for the component's ready path and reports
// the status and whether it means ready (spec.Component's ReadyAnswer).
// It follows no redirect, as aim's runtimes do not.
func ProbeReady(ctx context.Context, hc *http.Client, addr string, c spec.Component) (int, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.ReadyPath(), nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("User-Agent", "aim-check")
	cl := *hc
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Do(req)
	if err != nil {
		return 0, false, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	return resp.StatusCode, c.ReadyAnswer(resp.StatusCode), nil
}

// ReadinessTarget is a component that answers on 8080, as the readiness
// rule probes it.
type ReadinessTarget struct {
	Comp spec.Component
	Addr string
	// Started is when its process started; evidence counts from it.
	Started time.Time
	// Ready is when its readiness rule was first met; zero means not yet
	// known, and the rule probes it itself.
	Ready time.Time
	// Deadline ends the wait for paths that answer 5xx: the start-up
	// limit.
	Deadline time.Time
	// Progress receives a line when the rule waits; nil means silent.
	Progress func(string)
}

// watched is one path the readiness rule probes, and what it answered.
type watched struct {
	path string
	// busy is true while its last answer was a 5xx.
	busy bool
	// late is true when it answered 5xx once the component was judged
	// ready.
	late bool
	// settled is the round in which it last stopped answering 5xx, until
	// the time after start, and code the status it answered then.
	settled, code int
	until         time.Duration
}

// ProbeReadiness judges the readiness rule: the component must not be
// judged ready (by its ready.path, or GET / by default) while its API
// still answers 5xx, for a woken solution is handed the requests that
// waited the moment it is judged so. It probes the well-known readiness
// paths under the component's prefixes, and the GET paths of an OpenAPI
// document found at <prefix>/openapi.json, every readyEvery until none
// answers 5xx or t.Deadline passes; a path still answering 5xx then is
// broken rather than starting, and not counted. A warning proposes the
// ready.path to add: a path that answered 5xx until the others stopped,
// and 2xx from then on.
func ProbeReadiness(ctx context.Context, hc *http.Client, t ReadinessTarget) Result {
	ws := readinessPaths(t.Comp)
	haveAPI := map[string]bool{}
	for round := 0; ; round++ {
		if t.Ready.IsZero() {
			if _, ok, err := ProbeReady(ctx, hc, t.Addr, t.Comp); err == nil && ok {
				t.Ready = time.Now()
			}
		}
		answers := make([]*Answer, len(ws))
		var wg sync.WaitGroup
		for i, w := range ws {
			wg.Go(func() { answers[i], _ = Get(ctx, hc, t.Addr, "", w.path) })
		}
		wg.Wait()
		at := time.Since(t.Started)
		busy, grown := false, false
		for i, w := range ws {
			a := answers[i]
			if a == nil {
				continue // no answer tells nothing
			}
			switch {
			case a.status >= 500:
				w.late = w.late || !t.Ready.IsZero()
				w.busy = true
			case w.busy:
				w.busy, w.settled, w.code, w.until = false, round, a.status, at
			}
			busy = busy || w.busy
			if strings.HasSuffix(w.path, "/openapi.json") && a.status == http.StatusOK && !haveAPI[w.path] {
				haveAPI[w.path] = true
				more := apiPaths(a.body, ws)
				ws, grown = append(ws, more...), grown || len(more) > 0
			}
		}
		if ctx.Err() != nil || (!t.Ready.IsZero() && !busy && !grown) || time.Now().After(t.Deadline) {
			break
		}
		if round == 10 && t.Progress != nil {
			t.Progress(fmt.Sprintf("component %s: waiting until its paths stop answering 5xx (at most until %s after start)", t.Comp.Name, FormatDuration(t.Deadline.Sub(t.Started))))
		}
		select {
		case <-ctx.Done():
		case <-time.After(readyEvery):
		}
	}
	return judgeReadiness(t, ws)
}

// readinessPaths are the paths the rule starts with: the well-known ones
// and the OpenAPI document under each prefix (/ for a private component),
// leaving out the component's own ready path.
func readinessPaths(c spec.Component) []*watched {
	prefixes := c.Paths
	if !c.IsPublic() || len(prefixes) == 0 {
		prefixes = []string{"/"}
	}
	var ws []*watched
	seen := map[string]bool{c.Ready.Path: true}
	for _, pre := range prefixes {
		for _, p := range append(slices.Clone(readyPaths), "openapi.json") {
			if p = path.Join(pre, p); !seen[p] {
				seen[p] = true
				ws = append(ws, &watched{path: p, settled: -1})
			}
		}
	}
	return ws
}

// apiPaths are the GET paths of an OpenAPI document that need no
// parameter in the path, beside those already watched.
func apiPaths(doc []byte, have []*watched) []*watched {
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return nil
	}
	var ps []string
	for p, ops := range d.Paths {
		if _, ok := ops["get"]; ok && strings.HasPrefix(p, "/") && !strings.Contains(p, "{") &&
			!slices.ContainsFunc(have, func(w *watched) bool { return w.path == p }) {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	var out []*watched
	for _, p := range ps[:min(len(ps), maxAPIPaths)] {
		out = append(out, &watched{path: p, settled: -1})
	}
	return out
}

// judgeReadiness turns what the paths answered into the rule's result.
func judgeReadiness(t ReadinessTarget, ws []*watched) Result {
	name := t.Comp.Name
	how := "GET " + t.Comp.ReadyPath()
	if t.Comp.Ready.Path != "" {
		how += " (its ready.path)"
	}
	if t.Ready.IsZero() {
		return NewResult("readiness", name, Skip, fmt.Sprintf("%s never met its readiness rule", how))
	}
	judged := fmt.Sprintf("judged ready by %s %s after start", how, FormatDuration(t.Ready.Sub(t.Started)))
	var late, stuck []*watched
	last := -1
	var until time.Duration
	for _, w := range ws {
		switch {
		case w.busy:
			stuck = append(stuck, w)
		case w.late:
			late = append(late, w)
			last = max(last, w.settled)
			until = max(until, w.until)
		}
	}
	note := ""
	if len(stuck) > 0 {
		note = fmt.Sprintf("; %s answered 5xx throughout, not counted", listPaths(stuck))
	}
	if len(late) == 0 {
		return NewResult("readiness", name, Pass, fmt.Sprintf("%s; no probed path answered 5xx after that (%d probed)%s", judged, len(ws), note))
	}
	res := NewResult("readiness", name, Warn, fmt.Sprintf("%s, but %s answered 5xx until %s%s", judged, listPaths(late), FormatDuration(until), note))
	res.Fix = readinessFix(name, late, last)
	return res
}

// readinessFix proposes the ready.path: of the late paths that stopped
// answering 5xx last (within a round of the last: the paths of one round
// are probed one after another, and an app that turns ready between two
// of them would otherwise make the choice a matter of timing) and
// answered 2xx then, the first well-known one, else the first.
func readinessFix(comp string, late []*watched, last int) string {
	var best *watched
	rank := func(w *watched) int {
		for i, p := range readyPaths {
			if strings.HasSuffix(w.path, "/"+p) {
				return i
			}
		}
		return len(readyPaths)
	}
	for _, w := range late {
		if w.settled >= last-1 && w.code >= 200 && w.code < 300 && (best == nil || rank(w) < rank(best)) {
			best = w
		}
	}
	if best == nil {
		return fmt.Sprintf("serve a path that answers 2xx only once component %s can serve, and name it in aim.yaml under the component: ready: {path: /-/ready}", comp)
	}
	return fmt.Sprintf("add ready: {path: %s} to component %s in aim.yaml (it answered 5xx until the component could serve, then %d), so that a wake waits for it", best.path, comp, best.code)
}

// listPaths names up to maxListed paths: "GET /a, /b and 3 more".
func listPaths(ws []*watched) string {
	ps := make([]string, 0, maxListed)
	for _, w := range ws[:min(len(ws), maxListed)] {
		ps = append(ps, w.path)
	}
	s := "GET " + strings.Join(ps, ", ")
	if n := len(ws) - maxListed; n > 0 {
		s += fmt.Sprintf(" and %d more", n)
	}
	return s
}
