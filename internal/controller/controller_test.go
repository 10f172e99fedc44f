package controller

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/testlog"
)

// Manifests the tests deploy.
const (
	// built is one public component built from an uploaded context.
	built = `
name: hello
components:
  - name: web
    build: web
`
	// pair is a built public component and a private one from an image.
	pair = `
name: hello
components:
  - name: web
    build: web
    public: true
  - name: engine
    image: aim-test/engine:1
`
	// withVolume is built, with a read-write volume.
	withVolume = `
name: hello
components:
  - name: web
    build: web
    volumes: [{name: data, path: /data, size: 1Gi}]
`
	// readyAt is built, judged ready by GET /-/ready.
	readyAt = `
name: hello
components:
  - name: web
    build: web
    ready: {path: /-/ready}
`
	// scalable grows to three replicas.
	scalable = `
name: hello
components:
  - name: web
    build: web
scaling: {max: 3}
`
)

// harness is a controller on fakes.
type harness struct {
	rt     *fakeRuntime
	b      *fakeBuilder
	st     *fakeStore
	routes *fakeRoutes
	c      *Controller
}

// newHarness builds a controller with short timeouts; cfg's zero
// timeouts take them.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 2 * time.Second
	}
	if cfg.WakeTimeout == 0 {
		cfg.WakeTimeout = 5 * time.Second
	}
	cfg.Logger = testlog.Logger(t, slog.LevelDebug)
	h := &harness{rt: newFakeRuntime(t), b: &fakeBuilder{}, st: newFakeStore(), routes: newFakeRoutes()}
	h.c = New(cfg, h.rt, h.b, h.st, h.routes)
	return h
}

func manifest(t *testing.T, yaml string) *spec.Manifest {
	t.Helper()
	m, err := spec.Parse(spec.FileName, []byte(yaml))
	if err != nil {
		t.Fatalf("parsing the test's manifest: %v", err)
	}
	return m
}

// request asks for a deploy of m with a build context for every
// component that builds.
func request(m *spec.Manifest) solution.DeployRequest {
	req := solution.DeployRequest{Manifest: m, Contexts: map[string]io.Reader{}}
	for _, c := range m.Components {
		if c.Build != "" {
			req.Contexts[c.Name] = strings.NewReader("a tar archive")
		}
	}
	return req
}

// progressLog collects a deploy's progress lines.
type progressLog struct {
	mu    sync.Mutex
	lines []string
}

func (p *progressLog) add(comp, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, comp+": "+msg)
}

func (p *progressLog) has(line string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.lines, line)
}

// deploy deploys yaml, which must succeed.
func (h *harness) deploy(t *testing.T, yaml string) *solution.Info {
	t.Helper()
	info, err := h.c.Deploy(context.Background(), request(manifest(t, yaml)), nil)
	if err != nil {
		t.Fatalf("deploying: %v", err)
	}
	return info
}

// state is the controller's state of name and its reason.
func (h *harness) state(t *testing.T, name string) (solution.State, string) {
	t.Helper()
	s := h.c.get(name)
	if s == nil {
		t.Fatalf("the controller does not know %s", name)
	}
	_, st, reason := s.snapshot()
	return st, reason
}

// wantServing checks that generation gen of hello serves: the state is
// ready, the store says so, and the route sends web to exactly the
// running replicas of gen.
func (h *harness) wantServing(t *testing.T, gen int64, replicas int) {
	t.Helper()
	if st, reason := h.state(t, "hello"); st != solution.Ready || reason != "" {
		t.Errorf("state = %s (%q), want ready", st, reason)
	}
	rec := h.st.rec("hello")
	if rec == nil || rec.Generation != gen || rec.State != string(solution.Ready) {
		t.Errorf("store has %+v, want generation %d ready", rec, gen)
	}
	rs, ok := h.routes.route("hello")
	if !ok || rs.State != gateway.StateReady {
		t.Fatalf("route = %+v, want ready", rs)
	}
	got := slices.Sorted(slices.Values(addrs(rs, "web")))
	want := h.rt.running("hello", "web", gen)
	if len(want) != replicas || !slices.Equal(got, want) {
		t.Errorf("route sends web to %v; running replicas of generation %d: %v, want %d of them", got, gen, want, replicas)
	}
}

// eventually waits up to 5s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
