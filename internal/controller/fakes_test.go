package controller

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/store"
)

// The fakes below stand for the SQLite store, the Docker builder, the
// gateway's table and the Docker runtime. They keep everything in memory;
// the only real thing is the HTTP server each running replica is, because
// the controller judges readiness by a GET to a replica's address.

var (
	_ Store           = (*fakeStore)(nil)
	_ Builder         = (*fakeBuilder)(nil)
	_ Routes          = (*fakeRoutes)(nil)
	_ runtime.Runtime = (*fakeRuntime)(nil)
)

// fakeStore is the store as a map. It hands out and keeps copies, as a
// database would, so that the test sees what was saved and not the
// controller's live record.
type fakeStore struct {
	mu   sync.Mutex
	sols map[string]*store.Solution
	gen  int64
	gens map[string][]store.Generation // oldest first
}

func newFakeStore() *fakeStore {
	return &fakeStore{sols: map[string]*store.Solution{}, gens: map[string][]store.Generation{}}
}

func (f *fakeStore) PutGeneration(_ context.Context, g *store.Generation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.gens[g.Solution] {
		if f.gens[g.Solution][i].Generation == g.Generation {
			f.gens[g.Solution][i] = *g
			return nil
		}
	}
	f.gens[g.Solution] = append(f.gens[g.Solution], *g)
	return nil
}

func (f *fakeStore) SetOutcome(_ context.Context, sol string, gen int64, o store.Outcome, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.gens[sol] {
		if g := &f.gens[sol][i]; g.Generation == gen {
			g.Outcome, g.Reason = o, reason
			return nil
		}
	}
	return store.ErrNotFound
}

func (f *fakeStore) GetGeneration(_ context.Context, sol string, gen int64) (*store.Generation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.gens[sol] {
		if g.Generation == gen {
			return &g, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeStore) ListGenerations(_ context.Context, sol string, limit int) ([]store.Generation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Generation
	for i := len(f.gens[sol]) - 1; i >= 0 && (limit == 0 || len(out) < limit); i-- {
		out = append(out, f.gens[sol][i])
	}
	return out, nil
}

func (f *fakeStore) Unfinished(context.Context) ([]store.Generation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Generation
	for _, gens := range f.gens {
		for _, g := range gens {
			if g.Outcome == store.OutcomeDeploying {
				out = append(out, g)
			}
		}
	}
	slices.SortFunc(out, func(a, b store.Generation) int { return int(a.Generation - b.Generation) })
	return out, nil
}

func copyRec(s *store.Solution) *store.Solution {
	c := *s
	c.Images = maps.Clone(s.Images)
	return &c
}

func (f *fakeStore) Put(_ context.Context, s *store.Solution) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	f.sols[s.Name] = copyRec(s)
	return nil
}

func (f *fakeStore) Get(_ context.Context, name string) (*store.Solution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sols[name]
	if !ok {
		return nil, fmt.Errorf("solution %s: %w", name, store.ErrNotFound)
	}
	return copyRec(s), nil
}

func (f *fakeStore) List(context.Context) ([]*store.Solution, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*store.Solution
	for _, n := range slices.Sorted(maps.Keys(f.sols)) {
		out = append(out, copyRec(f.sols[n]))
	}
	return out, nil
}

func (f *fakeStore) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sols, name)
	return nil
}

func (f *fakeStore) SetState(_ context.Context, name, state, lastError string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sols[name]
	if !ok {
		return fmt.Errorf("solution %s: %w", name, store.ErrNotFound)
	}
	s.State, s.LastError, s.UpdatedAt = state, lastError, time.Now()
	return nil
}

func (f *fakeStore) NextGeneration(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	return f.gen, nil
}

// rec returns what the store holds for name, or nil.
func (f *fakeStore) rec(name string) *store.Solution {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.sols[name]; ok {
		return copyRec(s)
	}
	return nil
}

// fakeBuilder records builds and image removals. failBuild and missing
// make builds and image look-ups fail.
type fakeBuilder struct {
	mu        sync.Mutex
	failBuild error           // every Build fails with it after one line of output
	missing   map[string]bool // images EnsureImage can't find
	built     []string        // tags, in order
	removed   []string        // refs, in order
	// wantAuth is the auth PullImage must be given for a ref, as a
	// registry that wants a login; pulls are the refs and auths pulled.
	wantAuth map[string]string
	pulls    []string
}

func (f *fakeBuilder) PullImage(_ context.Context, ref, auth string, _ func(string)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pulls = append(f.pulls, ref+" "+auth)
	if want, ok := f.wantAuth[ref]; ok && (want != auth || auth == "") {
		return fmt.Errorf("image %q could not be pulled: no basic auth credentials: %w", ref, registry.ErrUnauthorized)
	}
	return nil
}

func (f *fakeBuilder) Build(_ context.Context, buildContext io.Reader, _, tag string, progress func(string)) error {
	if _, err := io.ReadAll(buildContext); err != nil {
		return err
	}
	progress("Step 1/1 : FROM scratch")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failBuild != nil {
		return f.failBuild
	}
	f.built = append(f.built, tag)
	return nil
}

func (f *fakeBuilder) EnsureImage(_ context.Context, ref string, _ func(string)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missing[ref] {
		return fmt.Errorf("pull access denied for %s, repository does not exist", ref)
	}
	return nil
}

func (f *fakeBuilder) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.missing[ref] || slices.Contains(f.removed, ref) {
		return "", fmt.Errorf("no such image %s", ref)
	}
	return "sha256:" + ref, nil
}

func (f *fakeBuilder) RemoveImage(_ context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, ref)
	return nil
}

func (f *fakeBuilder) removedImages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.removed)
}

// fakeRoutes is the gateway's table: the last spec set for each solution,
// and every spec in the order it was set.
type fakeRoutes struct {
	mu      sync.Mutex
	cur     map[string]gateway.RouteSpec
	history []gateway.RouteSpec
	deleted []string
}

func newFakeRoutes() *fakeRoutes { return &fakeRoutes{cur: map[string]gateway.RouteSpec{}} }

func (f *fakeRoutes) Set(rs gateway.RouteSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur[rs.Name] = rs
	f.history = append(f.history, rs)
}

func (f *fakeRoutes) Delete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.cur, name)
	f.deleted = append(f.deleted, name)
}

// route returns the route of name and whether there is one.
func (f *fakeRoutes) route(name string) (gateway.RouteSpec, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs, ok := f.cur[name]
	return rs, ok
}

// states lists the states the route of name went through, in order.
func (f *fakeRoutes) states(name string) []gateway.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []gateway.State
	for _, rs := range f.history {
		if rs.Name == name {
			out = append(out, rs.State)
		}
	}
	return out
}

// addrs is the addresses a route sends component comp to.
func addrs(rs gateway.RouteSpec, comp string) []string {
	for _, u := range rs.Upstreams {
		if u.Component == comp {
			return u.Addrs
		}
	}
	return nil
}

// mode is how a fake replica behaves once started.
type mode int

const (
	answer mode = iota // an HTTP server with the behaviour's handler
	silent             // running, but nothing listens at its address
	closes             // accepts connections and closes them at once
	exits              // exits at once with the behaviour's exit code
)

// behaviour is what a replica does when it starts.
type behaviour struct {
	mode    mode
	handler http.Handler // for answer; nil means site
	code    int          // exit code, for exits
	pid     int          // reported as the replica's Pid
}

// plan decides how the replica index of comp in generation gen behaves.
type plan func(comp string, gen int64, index int) behaviour

// site answers like a solution that follows the standard: an HTML root
// page and a health path.
var site = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><title>hello</title><p>hello</p>")
	case "/healthz":
		fmt.Fprint(w, "ok")
	default:
		http.NotFound(w, r)
	}
})

func status(code int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) })
}

// all plans every replica alike.
func all(b behaviour) plan { return func(string, int64, int) behaviour { return b } }

// fromGen plans generations from gen on as b, earlier ones as sites.
func fromGen(gen int64, b behaviour) plan {
	return func(_ string, g int64, _ int) behaviour {
		if g >= gen {
			return b
		}
		return behaviour{}
	}
}

type replicaKey struct {
	comp  string
	gen   int64
	index int
}

// fakeReplica is a container: its status and, while it runs, its server.
type fakeReplica struct {
	runtime.Replica
	stop func()
}

// fakeRuntime is the container engine. A started replica is a real HTTP
// server on 127.0.0.1 (or a port nothing listens on, or a process that
// exited), as its plan says; stopping it closes the server, and starting
// it again opens a new one on a new port, as a restarted container gets
// a new address.
type fakeRuntime struct {
	t    testing.TB
	plan plan

	// beforeScale, when set, runs at the start of every Scale, outside the
	// runtime's lock: tests look at the routes there, or block the scale.
	beforeScale func(replicas int)
	// removeGate, when set, blocks Remove until it is closed.
	removeGate chan struct{}
	// applyErr, when set, is what Apply returns, starting nothing.
	applyErr error

	mu   sync.Mutex
	sols map[string]map[replicaKey]*fakeReplica
	// trials counts each solution's trial containers, which only seedTrial
	// makes (the fake runs no trials) and Prune removes.
	trials map[string]int
	logs   map[string]string // a component's output
	calls  []string
}

func newFakeRuntime(t testing.TB) *fakeRuntime {
	f := &fakeRuntime{t: t, plan: all(behaviour{}), sols: map[string]map[replicaKey]*fakeReplica{}, trials: map[string]int{}, logs: map[string]string{}}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, reps := range f.sols {
			for _, r := range reps {
				r.halt()
			}
		}
	})
	return f
}

func (r *fakeReplica) halt() {
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
}

// start runs replica key of sol as its plan says. Called with f.mu held.
func (f *fakeRuntime) start(sol string, key replicaKey) {
	reps := f.sols[sol]
	if reps == nil {
		reps = map[replicaKey]*fakeReplica{}
		f.sols[sol] = reps
	}
	r := reps[key]
	if r == nil {
		r = &fakeReplica{Replica: runtime.Replica{
			ID:         fmt.Sprintf("%s-%s-g%d-%d", sol, key.comp, key.gen, key.index),
			Generation: key.gen, Index: key.index,
		}}
		reps[key] = r
	}
	b := f.plan(key.comp, key.gen, key.index)
	r.Running, r.Addr, r.ExitCode, r.Pid = true, "", 0, b.pid
	r.StartedAt = time.Now()
	switch b.mode {
	case answer:
		h := b.handler
		if h == nil {
			h = site
		}
		srv := httptest.NewServer(h)
		r.Addr, r.stop = srv.Listener.Addr().String(), srv.Close
	case silent:
		r.Addr = closedAddr(f.t)
	case closes:
		ln := listen(f.t)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		r.Addr, r.stop = ln.Addr().String(), func() { ln.Close() }
	case exits:
		r.Running, r.ExitCode = false, b.code
		r.FinishedAt = r.StartedAt.Add(time.Millisecond)
	}
}

// halt stops a running replica as `docker stop` does. Called with f.mu
// held.
func (f *fakeRuntime) halt(r *fakeReplica) {
	if !r.Running {
		return
	}
	r.halt()
	r.Running, r.Addr, r.FinishedAt = false, "", time.Now()
}

func (f *fakeRuntime) record(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

// apply is Apply without the record of the call. Called with f.mu held.
func (f *fakeRuntime) apply(s runtime.Spec, replicas int) {
	for _, comp := range s.Manifest.Components {
		for i := range replicas {
			key := replicaKey{comp.Name, s.Generation, i}
			if r := f.sols[s.Manifest.Name][key]; r != nil && r.Running {
				continue
			}
			f.start(s.Manifest.Name, key)
		}
	}
}

func (f *fakeRuntime) Apply(_ context.Context, s runtime.Spec, replicas int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("apply g%d x%d", s.Generation, replicas)
	if f.applyErr != nil {
		return f.applyErr
	}
	f.apply(s, replicas)
	return nil
}

func (f *fakeRuntime) Scale(_ context.Context, s runtime.Spec, replicas int) error {
	if f.beforeScale != nil {
		f.beforeScale(replicas)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("scale g%d x%d", s.Generation, replicas)
	f.apply(s, replicas)
	for key, r := range f.sols[s.Manifest.Name] {
		if key.gen == s.Generation && key.index >= replicas {
			f.halt(r)
		}
	}
	return nil
}

func (f *fakeRuntime) Prune(_ context.Context, name string, keep int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("prune keep g%d", keep)
	delete(f.trials, name)
	for key, r := range f.sols[name] {
		if key.gen != keep {
			f.halt(r)
			delete(f.sols[name], key)
		}
	}
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, name string) error {
	if f.removeGate != nil {
		<-f.removeGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("remove %s", name)
	for _, r := range f.sols[name] {
		f.halt(r)
	}
	delete(f.sols, name)
	delete(f.trials, name)
	return nil
}

// status builds what Inspect reports. Called with f.mu held.
func (f *fakeRuntime) status(name string) (runtime.Status, bool) {
	reps := f.sols[name]
	if len(reps) == 0 && f.trials[name] == 0 {
		return runtime.Status{}, false
	}
	st := runtime.Status{Name: name, Trials: f.trials[name]}
	byComp := map[string][]runtime.Replica{}
	for key, r := range reps {
		byComp[key.comp] = append(byComp[key.comp], r.Replica)
	}
	for _, comp := range slices.Sorted(maps.Keys(byComp)) {
		rs := byComp[comp]
		slices.SortFunc(rs, func(a, b runtime.Replica) int {
			if a.Generation != b.Generation {
				return int(a.Generation - b.Generation)
			}
			return a.Index - b.Index
		})
		st.Components = append(st.Components, runtime.ComponentStatus{Name: comp, Replicas: rs})
	}
	return st, true
}

func (f *fakeRuntime) Inspect(_ context.Context, name string) (*runtime.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.status(name)
	if !ok {
		return nil, fmt.Errorf("solution %s: %w", name, runtime.ErrNotFound)
	}
	return &st, nil
}

func (f *fakeRuntime) List(context.Context) ([]runtime.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.Status
	names := slices.Collect(maps.Keys(f.sols))
	for name := range f.trials {
		if f.sols[name] == nil {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if st, ok := f.status(name); ok {
			out = append(out, st)
		}
	}
	return out, nil
}

// Logs returns the component's output, its last opts.Tail lines when
// Tail is set.
func (f *fakeRuntime) Logs(_ context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sols[name]) == 0 {
		return nil, fmt.Errorf("solution %s: %w", name, runtime.ErrNotFound)
	}
	lines := strings.SplitAfter(f.logs[component], "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if opts.Tail > 0 && len(lines) > opts.Tail {
		lines = lines[len(lines)-opts.Tail:]
	}
	return io.NopCloser(strings.NewReader(strings.Join(lines, ""))), nil
}

// seed creates and starts replicas without recording a call, as a
// previous aim left them.
func (f *fakeRuntime) seed(s runtime.Spec, replicas int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apply(s, replicas)
}

// seedTrial leaves a trial container of name, as an aim that stopped in
// the middle of a deploy's trial did (or the engine, finishing a create
// after aim had gone).
func (f *fakeRuntime) seedTrial(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trials[name]++
}

func (f *fakeRuntime) trialsOf(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trials[name]
}

// running lists the addresses of the running replicas of comp in gen.
func (f *fakeRuntime) running(name, comp string, gen int64) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for key, r := range f.sols[name] {
		if key.comp == comp && key.gen == gen && r.Running {
			out = append(out, r.Addr)
		}
	}
	slices.Sort(out)
	return out
}

// generations lists the generations that have containers, running or not.
func (f *fakeRuntime) generations(name string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := map[int64]bool{}
	for key := range f.sols[name] {
		seen[key.gen] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

func (f *fakeRuntime) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.1: %v", err)
	}
	return ln
}

// closedAddr is an address on 127.0.0.1 that nothing listens on.
func closedAddr(t testing.TB) string {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// crash makes replica index of comp in gen exit with code, restarted
// restarts times by the engine, as Docker reports a crash loop.
func (f *fakeRuntime) crash(name, comp string, gen int64, index, code, restarts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.sols[name][replicaKey{comp, gen, index}]
	f.halt(r)
	r.ExitCode, r.Restarts = code, restarts
}

// restart starts a crashed replica again, as the engine's restart policy
// does: on a new address.
func (f *fakeRuntime) restart(name, comp string, gen int64, index int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start(name, replicaKey{comp, gen, index})
}
