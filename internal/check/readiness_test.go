package check

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// lateServer answers like a server that listens before it can serve (issue
// 20: Prometheus until its storage is open): / at once, each path in late
// with 503 for the first startup, then as answer says (200 when it names
// no status). Paths in neither answer 404.
func lateServer(t *testing.T, startup time.Duration, late []string, answer map[string]int) *httptest.Server {
	t.Helper()
	began := time.Now()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/":
			fmt.Fprint(w, "<!doctype html><title>t</title>")
		case strings.Contains(","+strings.Join(late, ",")+",", ","+p+",") && time.Since(began) < startup:
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		case p == "/openapi.json" && answer[p] == 0:
			fmt.Fprint(w, `{"openapi":"3.1.0","paths":{"/api/v1/query":{"get":{}},"/api/v1/{id}":{"get":{}},"/api/v1/write":{"post":{}}}}`)
		case answer[p] != 0:
			w.WriteHeader(answer[p])
		case strings.Contains(","+strings.Join(late, ",")+",", ","+p+","):
			fmt.Fprint(w, "ok")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeReadiness(t *testing.T) {
	yes := true
	web := spec.Component{Name: "web", Public: &yes, Paths: []string{"/"}}
	withReady := web
	withReady.Ready = spec.Ready{Path: "/-/ready"}
	const startup = 600 * time.Millisecond
	for _, tc := range []struct {
		name   string
		comp   spec.Component
		late   []string
		answer map[string]int
		// deadline is how long after the start the rule may wait; zero
		// means 5s.
		deadline time.Duration
		status   Status
		evidence []string
		fix      string
	}{{
		name: "ready at once", comp: web, status: Pass,
		evidence: []string{"judged ready by GET / ", "no probed path answered 5xx after that"},
	}, {
		name: "the API answers 503 after / made it ready", comp: web,
		late: []string{"/-/ready", "/healthz", "/api/v1/query"}, status: Warn,
		evidence: []string{"judged ready by GET / ", "but GET /-/ready, /healthz, /api/v1/query answered 5xx until "},
		fix:      "add ready: {path: /-/ready} to component web in aim.yaml (it answered 5xx until the component could serve, then 200), so that a wake waits for it",
	}, {
		name: "an OpenAPI path is proposed when no well-known one tells", comp: web,
		late: []string{"/api/v1/query"}, status: Warn,
		evidence: []string{"but GET /api/v1/query answered 5xx until "},
		fix:      "add ready: {path: /api/v1/query} to component web",
	}, {
		name: "no path answers 2xx once it can serve", comp: web,
		late: []string{"/healthz"}, answer: map[string]int{"/healthz": http.StatusUnauthorized}, status: Warn,
		fix: "serve a path that answers 2xx only once component web can serve, and name it in aim.yaml under the component: ready: {path: /-/ready}",
	}, {
		name: "a ready.path that waits for the API", comp: withReady,
		late: []string{"/-/ready", "/healthz", "/api/v1/query"}, status: Pass,
		evidence: []string{"judged ready by GET /-/ready (its ready.path) 0.6", "no probed path answered 5xx after that"},
	}, {
		name: "a path that answers 5xx throughout is broken, not starting", comp: web,
		answer: map[string]int{"/health": http.StatusInternalServerError}, deadline: time.Second, status: Pass,
		evidence: []string{"GET /health answered 5xx throughout, not counted"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := lateServer(t, startup, tc.late, tc.answer)
			started := time.Now()
			target := ReadinessTarget{Comp: tc.comp, Addr: strings.TrimPrefix(srv.URL, "http://"), Started: started,
				Deadline: started.Add(cmp.Or(tc.deadline, 5*time.Second)), Progress: func(s string) { t.Log(s) }}
			if tc.comp.Ready.Path == "" {
				target.Ready = started // GET / answers at once
			}
			res := ProbeReadiness(context.Background(), NewHTTPClient(), target)
			t.Logf("%s %s; fix: %s", res.Status, res.Evidence, res.Fix)
			if res.Status != tc.status {
				t.Errorf("status %s, want %s", res.Status, tc.status)
			}
			for _, e := range tc.evidence {
				if !strings.Contains(res.Evidence, e) {
					t.Errorf("evidence %q lacks %q", res.Evidence, e)
				}
			}
			if !strings.HasPrefix(res.Fix, tc.fix) || tc.fix == "" && res.Fix != "" {
				t.Errorf("fix %q, want %q", res.Fix, tc.fix)
			}
			if took := time.Since(started); tc.status == Pass && tc.deadline == 0 && took > startup+time.Second {
				t.Errorf("the rule took %s; it waits only while a path answers 5xx", took)
			}
		})
	}
}
