package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
)

// deployRun is one deploy under test and what was seen during it.
type deployRun struct {
	info     *solution.Info
	err      error
	progress *progressLog
	// While the containers start: the controller's state and the
	// store's.
	startState, startStored string
	// before is the route as it was before the deploy.
	before gateway.RouteSpec
	// created is when the earlier deploy created the solution.
	created time.Time
}

func TestDeploy(t *testing.T) {
	const tag1, tag2 = "aim.local/aim/hello-web:g1", "aim.local/aim/hello-web:g2"
	textRoot := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "hello")
	})
	withOpenAPI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openapi.json" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"openapi": "3.1.0"}`)
			return
		}
		site.ServeHTTP(w, r)
	})
	var logs strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&logs, "line %d\n", i)
	}
	lastSix := "line 7 | line 8 | line 9 | line 10 | line 11 | line 12"
	port8080 := func(evidence string) string {
		return failReport("component web did not answer on port 8080 within 300ms", "port-8080", evidence, "")
	}

	cases := []struct {
		name     string
		manifest string
		// earlier deploys generation 1 with sites before the deploy under
		// test.
		earlier bool
		// replica is how the deployed generation's replicas behave; nil
		// means sites.
		replica      func(t *testing.T) behaviour
		startTimeout time.Duration
		skipChecks   bool
		setup        func(h *harness, req *solution.DeployRequest)
		check        func(t *testing.T, h *harness, r deployRun)
	}{{
		name: "first deploy", manifest: built,
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.startState != string(solution.Deploying) || r.startStored != string(solution.Deploying) {
				t.Errorf("while starting: state %s, stored %s; want deploying", r.startState, r.startStored)
			}
			h.wantServing(t, 1, 1)
			if got := h.routes.states("hello"); !slices.Equal(got, []gateway.State{gateway.StateStarting, gateway.StateReady}) {
				t.Errorf("route states = %v, want starting then ready", got)
			}
			rec := h.st.rec("hello")
			if rec.Images["web"] != tag1 || len(rec.Check) == 0 {
				t.Errorf("store has images %v and check %q; want web=%s and a report", rec.Images, rec.Check, tag1)
			}
			if r.info.State != solution.Ready || r.info.Generation != 1 || r.info.URL != "http://hello.localhost" {
				t.Errorf("info = %+v", r.info)
			}
			if len(r.info.Components) != 1 || r.info.Components[0].Running != 1 || r.info.Components[0].Image != tag1 {
				t.Errorf("info components = %+v", r.info.Components)
			}
			for _, want := range []string{"web: building " + tag1, "web: Step 1/1 : FROM scratch", ": serving at http://hello.localhost"} {
				if !r.progress.has(want) {
					t.Errorf("progress lacks %q: %q", want, r.progress.lines)
				}
			}
		},
	}, {
		name: "first deploy of a public and a private component", manifest: pair,
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			h.wantServing(t, 1, 1)
			rs, _ := h.routes.route("hello")
			if len(rs.Upstreams) != 1 || rs.Upstreams[0].Component != "web" || !slices.Equal(rs.Upstreams[0].Paths, []string{"/"}) {
				t.Errorf("upstreams = %+v, want web on / only", rs.Upstreams)
			}
			if got := h.rt.running("hello", "engine", 1); len(got) != 1 {
				t.Errorf("engine runs %v, want one replica", got)
			}
			if imgs := h.st.rec("hello").Images; imgs["web"] != tag1 || imgs["engine"] != "aim-test/engine:1" {
				t.Errorf("images = %v", imgs)
			}
		},
	}, {
		name: "update", manifest: built, earlier: true,
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			h.wantServing(t, 2, 1)
			if got := h.rt.generations("hello"); !slices.Equal(got, []int64{2}) {
				t.Errorf("generations in the runtime = %v, want [2]", got)
			}
			// Generation 1 served: its image stays for a rollback.
			if got := h.b.removedImages(); len(got) != 0 {
				t.Errorf("removed images %v, want none (kept for rollback)", got)
			}
			if got := h.routes.states("hello"); !slices.Equal(got, []gateway.State{gateway.StateStarting, gateway.StateReady, gateway.StateReady}) {
				t.Errorf("route states = %v; an update must not route as starting", got)
			}
			if r.info.Generation != 2 || !r.info.CreatedAt.Equal(r.created) {
				t.Errorf("info = generation %d created %v", r.info.Generation, r.info.CreatedAt)
			}
		},
	}, {
		name: "failed update keeps the old generation", manifest: built, earlier: true,
		replica: func(*testing.T) behaviour { return behaviour{mode: exits, code: 1} },
		check: func(t *testing.T, h *harness, r deployRun) {
			var se *solution.StartError
			if !errors.As(r.err, &se) || !strings.Contains(r.err.Error(), "the previous one goes on serving") ||
				!strings.Contains(se.Msg, "component web exited while starting with code 1") {
				t.Fatalf("err = %v, want a StartError that says the previous version serves", r.err)
			}
			h.wantServing(t, 1, 1)
			after, _ := h.routes.route("hello")
			if !slices.Equal(addrs(after, "web"), addrs(r.before, "web")) || after.State != r.before.State {
				t.Errorf("route changed from %+v to %+v", r.before, after)
			}
			if got := h.rt.generations("hello"); !slices.Equal(got, []int64{1}) {
				t.Errorf("generations in the runtime = %v, want [1]", got)
			}
			if got := h.b.removedImages(); !slices.Equal(got, []string{tag2}) {
				t.Errorf("removed images %v, want the new one, %s", got, tag2)
			}
		},
	}, {
		// A volume has one writer: the old replica stops before the new
		// one starts, and visitors meet "starting" meanwhile.
		name: "update with a read-write volume", manifest: withVolume, earlier: true,
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			h.wantServing(t, 2, 1)
			calls := h.rt.callLog()
			stop, start := slices.Index(calls, "scale g1 x0"), slices.Index(calls, "apply g2 x1")
			if stop < 0 || start < 0 || stop > start {
				t.Errorf("runtime calls %v; generation 1 must stop before generation 2 starts", calls)
			}
			if got := h.routes.states("hello"); !slices.Equal(got, []gateway.State{gateway.StateStarting, gateway.StateReady, gateway.StateStarting, gateway.StateReady}) {
				t.Errorf("route states = %v, want starting while the writer changes", got)
			}
			if !r.progress.has(": stopping the previous version first: a read-write volume has one writer at a time") {
				t.Errorf("progress lacks the hand-over: %q", r.progress.lines)
			}
		},
	}, {
		name: "failed update with a read-write volume", manifest: withVolume, earlier: true,
		replica: func(*testing.T) behaviour { return behaviour{mode: exits, code: 1} },
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err == nil || !strings.Contains(r.err.Error(), "the previous one goes on serving") {
				t.Fatalf("err = %v", r.err)
			}
			h.wantServing(t, 1, 1)
			if st, _ := h.routes.route("hello"); st.State != gateway.StateReady || len(addrs(st, "web")) != 1 {
				t.Errorf("route after the failed update: %+v, want generation 1 ready again", st)
			}
		},
	}, {
		name: "first deploy whose replica exits", manifest: built,
		replica: func(*testing.T) behaviour { return behaviour{mode: exits, code: 3} },
		check: func(t *testing.T, h *harness, r deployRun) {
			want := failReport("component web exited while starting with code 3", "starts", "exited while starting with code 3; its output says: "+lastSix, "")
			wantFailed(t, h, r.err, want)
			if calls := h.rt.callLog(); !slices.Contains(calls, "scale g1 x0") || slices.Contains(calls, "remove hello") {
				t.Errorf("runtime calls %v; the stopped containers must stay for `aim logs`", calls)
			}
		},
	}, {
		name: "first deploy where nothing answers", manifest: built, startTimeout: 300 * time.Millisecond,
		replica: func(*testing.T) behaviour { return behaviour{mode: silent} },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantFailed(t, h, r.err, port8080("nothing answers on port 8080 after 300ms"))
		},
	}, {
		name: "first deploy where the connection closes", manifest: built, startTimeout: 300 * time.Millisecond,
		replica: func(*testing.T) behaviour { return behaviour{mode: closes} },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantFailed(t, h, r.err, port8080("nothing answers on port 8080 after 300ms"))
		},
	}, {
		name: "first deploy of a process that listens elsewhere", manifest: built, startTimeout: 300 * time.Millisecond,
		replica: func(t *testing.T) behaviour { return behaviour{mode: silent, pid: listener(t, 5000, 9000)} },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantFailed(t, h, r.err, port8080("nothing listens on port 8080 after 300ms; the process listens on 5000, 9000"))
		},
	}, {
		name: "first deploy of a process on 8080 that answers 500", manifest: built, startTimeout: 300 * time.Millisecond,
		replica: func(t *testing.T) behaviour {
			return behaviour{handler: status(http.StatusInternalServerError), pid: listener(t, 8080)}
		},
		check: func(t *testing.T, h *harness, r deployRun) {
			wantFailed(t, h, r.err, port8080("listens on 8080 but GET / answers 5xx or hangs after 300ms"))
		},
	}, {
		// The site answers GET / at once but 404 at /-/ready: with a
		// ready.path, / answering no longer makes the component ready.
		name: "first deploy whose ready.path never answers 2xx", manifest: readyAt, startTimeout: 300 * time.Millisecond,
		replica: func(t *testing.T) behaviour { return behaviour{pid: listener(t, 8080)} },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantFailed(t, h, r.err, port8080("listens on 8080 but GET /-/ready (its ready.path) does not answer 2xx after 300ms"))
		},
	}, {
		name: "build fails on update", manifest: built, earlier: true,
		setup: func(h *harness, _ *solution.DeployRequest) {
			h.b.failBuild = errors.New("the command '/bin/sh -c make' returned 2")
		},
		check: func(t *testing.T, h *harness, r deployRun) {
			wantInputError(t, r.err, "component web: the command '/bin/sh -c make' returned 2")
			h.wantServing(t, 1, 1)
			if got := h.rt.callLog(); slices.Contains(got, "apply g2 x1") {
				t.Errorf("runtime calls %v; a failed build starts nothing", got)
			}
		},
	}, {
		name: "build fails on the first deploy", manifest: built,
		setup: func(h *harness, _ *solution.DeployRequest) { h.b.failBuild = errors.New("no Dockerfile") },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantInputError(t, r.err, "component web: no Dockerfile")
			if _, err := h.c.Get(context.Background(), "hello"); !errors.Is(err, solution.ErrNotFound) {
				t.Errorf("Get: %v, want not found", err)
			}
			if rs, ok := h.routes.route("hello"); ok {
				t.Errorf("route %+v for a solution that never built", rs)
			}
		},
	}, {
		name: "image missing", manifest: pair,
		setup: func(h *harness, _ *solution.DeployRequest) { h.b.missing = map[string]bool{"aim-test/engine:1": true} },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantInputError(t, r.err, "component engine: pull access denied for aim-test/engine:1")
		},
	}, {
		name: "build context missing", manifest: built,
		setup: func(_ *harness, req *solution.DeployRequest) { delete(req.Contexts, "web") },
		check: func(t *testing.T, h *harness, r deployRun) {
			wantInputError(t, r.err, `component web builds from "web" but no build context was uploaded`)
			if got := h.rt.callLog(); len(got) != 0 {
				t.Errorf("runtime calls %v, want none", got)
			}
		},
	}, {
		name: "root page not HTML", manifest: built,
		replica: func(*testing.T) behaviour { return behaviour{handler: textRoot} },
		check: func(t *testing.T, h *harness, r deployRun) {
			var ce *solution.CheckError
			if !errors.As(r.err, &ce) || !strings.Contains(ce.Report, "root-html") || !strings.Contains(ce.Report, "text/plain") {
				t.Fatalf("err = %v, want a CheckError on root-html", r.err)
			}
			wantFailed(t, h, r.err, r.err.Error())
		},
	}, {
		name: "root page not HTML on update", manifest: built, earlier: true,
		replica: func(*testing.T) behaviour { return behaviour{handler: textRoot} },
		check: func(t *testing.T, h *harness, r deployRun) {
			if !errors.As(r.err, new(*solution.CheckError)) {
				t.Fatalf("err = %v, want a CheckError", r.err)
			}
			h.wantServing(t, 1, 1)
		},
	}, {
		name: "root page not HTML with checks skipped", manifest: built, skipChecks: true,
		replica: func(*testing.T) behaviour { return behaviour{handler: textRoot} },
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			h.wantServing(t, 1, 1)
			if rec := h.st.rec("hello"); !rec.SkipChecks || len(rec.Check) != 0 || !r.info.SkipChecks {
				t.Errorf("store has skipChecks %v and check %q; want skipped and no report", rec.SkipChecks, rec.Check)
			}
		},
	}, {
		name: "OpenAPI document found", manifest: built,
		replica: func(*testing.T) behaviour { return behaviour{handler: withOpenAPI} },
		check: func(t *testing.T, h *harness, r deployRun) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.info.OpenAPI != "http://hello.localhost/openapi.json" {
				t.Errorf("info.OpenAPI = %q", r.info.OpenAPI)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{StartTimeout: c.startTimeout})
			var r deployRun
			gen := int64(1)
			if c.earlier {
				h.deploy(t, c.manifest)
				r.before, _ = h.routes.route("hello")
				r.created = h.st.rec("hello").CreatedAt
				gen = 2
			}
			if c.replica != nil {
				h.rt.mu.Lock()
				h.rt.plan = fromGen(gen, c.replica(t))
				h.rt.logs["web"] = logs.String()
				h.rt.mu.Unlock()
			}
			req := request(manifest(t, c.manifest))
			req.SkipChecks = c.skipChecks
			if c.setup != nil {
				c.setup(h, &req)
			}
			r.progress = &progressLog{}
			r.info, r.err = h.c.Deploy(context.Background(), req, func(comp, msg string) {
				r.progress.add(comp, msg)
				if msg == "starting containers" {
					st, _ := h.state(t, "hello")
					r.startState, r.startStored = string(st), h.st.rec("hello").State
				}
			})
			c.check(t, h, r)
		})
	}
}

// wantFailed checks that a first deploy failed with a StartError or
// CheckError saying msg, and that the solution is failed with it as the
// reason, in the controller, the store and the route.
// failReport is the error of a deploy that failed on rule: msg, then the
// rule's line with the evidence and the fix (the rule's own when fix is
// empty), as aim check writes them.
func failReport(msg, rule, evidence, fix string) string {
	res := check.NewResult(rule, "web", check.Fail, evidence)
	if fix != "" {
		res.Fix = fix
	}
	var b strings.Builder
	_ = check.WriteResults(&b, "", []check.Result{res}, false)
	return msg + ":\n" + strings.TrimRight(b.String(), "\n")
}

func wantFailed(t *testing.T, h *harness, err error, msg string) {
	t.Helper()
	if !errors.As(err, new(*solution.StartError)) && !errors.As(err, new(*solution.CheckError)) {
		t.Fatalf("err = %#v, want a StartError or a CheckError", err)
	}
	if err.Error() != msg {
		t.Errorf("err = %q\nwant  %q", err, msg)
	}
	if st, reason := h.state(t, "hello"); st != solution.Failed || reason != msg {
		t.Errorf("state = %s (%q), want failed with the error", st, reason)
	}
	if rec := h.st.rec("hello"); rec.State != string(solution.Failed) || rec.LastError != msg {
		t.Errorf("store has %s (%q), want failed with the error", rec.State, rec.LastError)
	}
	if rs, _ := h.routes.route("hello"); rs.State != gateway.StateFailed || rs.Reason != msg {
		t.Errorf("route = %s (%q), want failed with the error", rs.State, rs.Reason)
	}
}

func wantInputError(t *testing.T, err error, msg string) {
	t.Helper()
	var ie *solution.InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, msg) {
		t.Fatalf("err = %#v, want an InputError saying %q", err, msg)
	}
}
