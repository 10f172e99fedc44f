// Package controller keeps solutions running as the store says they
// should: it deploys them through a runtime, judges when they answer,
// tells the gateway where they are, adopts what a previous aim left
// running, and wakes sleeping solutions. It is the same for Docker and
// Kubernetes; only the runtime differs.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/seal"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
)

// Store is the part of the state store the controller uses.
type Store interface {
	Put(ctx context.Context, s *store.Solution) error
	Get(ctx context.Context, name string) (*store.Solution, error)
	List(ctx context.Context) ([]*store.Solution, error)
	Delete(ctx context.Context, name string) error
	SetState(ctx context.Context, name, state, lastError string) error
	NextGeneration(ctx context.Context) (int64, error)
	PutGeneration(ctx context.Context, g *store.Generation) error
	SetOutcome(ctx context.Context, solution string, gen int64, o store.Outcome, reason string) error
	GetGeneration(ctx context.Context, solution string, gen int64) (*store.Generation, error)
	ListGenerations(ctx context.Context, solution string, limit int) ([]store.Generation, error)
	Unfinished(ctx context.Context) ([]store.Generation, error)
}

// Builder makes the images a solution's components run.
type Builder interface {
	Build(ctx context.Context, buildContext io.Reader, dockerfile, tag string, progress func(string)) error
	EnsureImage(ctx context.Context, ref string, progress func(string)) error
	// PullImage pulls ref whether or not the engine has it, with auth
	// (registry.EngineAuth; empty for none); a refusal for credentials
	// wraps registry.ErrUnauthorized.
	PullImage(ctx context.Context, ref, auth string, progress func(string)) error
	RemoveImage(ctx context.Context, ref string) error
	// ImageID is the image's content digest, the engine's ID for it; an
	// error when the engine has no such image.
	ImageID(ctx context.Context, ref string) (string, error)
}

// Routes is the gateway's routing table.
type Routes interface {
	Set(gateway.RouteSpec)
	Delete(name string)
}

// Config configures a Controller. Zero values take the defaults named.
type Config struct {
	// StartTimeout bounds how long a component may take to answer on
	// 8080 after it starts. Zero means 60s.
	StartTimeout time.Duration
	// WakeTimeout bounds one wake. Zero means 2m.
	WakeTimeout time.Duration
	// IdleTimeout is how long a solution without requests stays awake
	// when its manifest names no scaling.idle. Zero means 30m.
	IdleTimeout time.Duration
	// Resync is how often running solutions are checked. Zero means 1s.
	Resync time.Duration
	// Defaults for manifest fields left empty. Zero means spec.DefaultDefaults.
	Defaults spec.Defaults
	// Limits fill a manifest's unset limits; LimitCaps bound what a
	// manifest may ask for (zero fields: no cap).
	Limits, LimitCaps spec.Limits
	// KeepGenerations is how many generations that served keep their
	// images, for `aim rollback`. Zero means 3.
	KeepGenerations int
	// ImagePrefix names the images aim builds: <prefix>/<solution>-<component>:g<generation>.
	// Servers sharing an engine need different prefixes. Empty means "aim.local/aim".
	ImagePrefix string
	// URL returns the public URL of a solution.
	URL func(name string) string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Secrets keeps the solutions' secrets, sealed with SecretKey. Nil
	// means none can be set, and a manifest that uses one fails.
	Secrets   SecretStore
	SecretKey *seal.Key
	// Registries keeps the providers' registry logins, sealed with
	// SecretKey. Nil means none can be given: images are pulled
	// anonymously.
	Registries RegistryStore
}

// Controller is the single owner of solution lifecycles.
type Controller struct {
	cfg     Config
	rt      runtime.Runtime
	builder Builder
	store   Store
	routes  Routes
	log     *slog.Logger
	probe   *http.Client

	mu   sync.Mutex
	sols map[string]*tracked
}

// solution is the controller's in-memory view of one solution.
type tracked struct {
	// op serialises deploys, removals, wakes and sleeps of the solution.
	op sync.Mutex

	mu     sync.Mutex // guards the fields below
	rec    *store.Solution
	state  solution.State
	reason string
	wake   *wakeOp
	// replicas is how many replicas of each component serve now; 0 until
	// the solution first answers.
	replicas int
}

// currentReplicas is how many replicas serve, or the manifest's floor
// before anything has been counted.
func (s *tracked) currentReplicas(m *spec.Manifest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replicas > 0 {
		return s.replicas
	}
	return replicasFor(m)
}

func (s *tracked) snapshot() (*store.Solution, solution.State, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec, s.state, s.reason
}

func (s *tracked) set(state solution.State, reason string) {
	s.mu.Lock()
	s.state, s.reason = state, reason
	s.mu.Unlock()
}

// New builds a controller. Call Run to adopt what exists and keep it
// running.
func New(cfg Config, rt runtime.Runtime, b Builder, st Store, routes Routes) *Controller {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.WakeTimeout == 0 {
		cfg.WakeTimeout = 2 * time.Minute
	}
	if cfg.KeepGenerations <= 0 {
		cfg.KeepGenerations = keepDefault
	}
	if cfg.ImagePrefix == "" {
		cfg.ImagePrefix = "aim.local/aim"
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.Resync == 0 {
		cfg.Resync = time.Second
	}
	if cfg.Defaults == (spec.Defaults{}) {
		cfg.Defaults = spec.DefaultDefaults
	}
	if cfg.URL == nil {
		cfg.URL = func(name string) string { return "http://" + name + ".localhost" }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DisableKeepAlives = true // probes must see a fresh listener each time
	return &Controller{
		cfg: cfg, rt: rt, builder: b, store: st, routes: routes, log: cfg.Logger,
		probe: &http.Client{Transport: tr, Timeout: gateway.ReadyTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sols: map[string]*tracked{},
	}
}

func (c *Controller) get(name string) *tracked {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sols[name]
}

func (c *Controller) getOrCreate(name string) *tracked {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.sols[name]
	if !ok {
		s = &tracked{}
		c.sols[name] = s
	}
	return s
}

// lock takes the op lock of name's solution, tracking it if it is new. A
// removal that held the lock meanwhile forgets the one it removed, so
// lock starts over with a fresh one rather than deploy into what nobody
// tracks any more.
func (c *Controller) lock(name string) *tracked {
	for {
		s := c.getOrCreate(name)
		s.op.Lock()
		if c.get(name) == s {
			return s
		}
		s.op.Unlock()
	}
}

func (c *Controller) runtimeSpec(rec *store.Solution) runtime.Spec {
	sp := runtime.Spec{Manifest: rec.Manifest, Images: rec.Images, Generation: rec.Generation, Defaults: c.cfg.Defaults, Owner: rec.Owner}
	if rec.Manifest != nil && len(rec.Manifest.Secrets()) > 0 {
		name, owner := rec.Name, rec.Owner
		sp.Secrets = func(ctx context.Context) (map[string]string, error) { return c.secretValues(ctx, name, owner) }
	}
	return sp
}

// Run keeps the routes in step with the runtime until ctx ends. Call
// Adopt first.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.resyncAll(ctx)
		}
	}
}

// Adopt makes the runtime match the store after a start: every
// solution's route is restored (before the gateway serves, so no request
// finds a known solution missing), containers of solutions aim doesn't
// know are removed, and what a deploy or a wake that aim stopped in the
// middle of left is put right (recover.go): the deploy's outcome is
// recorded, its leftovers are pruned, a wake's or a first deploy's
// replicas are stopped, and a solution that was serving and whose
// containers are gone is started again.
func (c *Controller) Adopt(ctx context.Context) error {
	recs, err := c.store.List(ctx)
	if err != nil {
		return fmt.Errorf("reading solutions: %w", err)
	}
	have, err := c.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("listing the runtime: %w", err)
	}
	known := map[string]int64{} // generation by name
	for _, rec := range recs {
		known[rec.Name] = rec.Generation
	}
	stale := map[string]bool{} // solutions with leftovers of a deploy
	up := map[string]bool{}    // solutions with a replica of their generation running
	for _, st := range have {
		stale[st.Name] = leftovers(st, known[st.Name])
		up[st.Name] = runs(st, known[st.Name])
	}
	for _, rec := range recs {
		s := c.getOrCreate(rec.Name)
		s.mu.Lock()
		s.rec = rec
		s.state, s.reason = solution.State(rec.State), rec.LastError
		s.mu.Unlock()
		if stale[rec.Name] {
			if err := c.rt.Prune(ctx, rec.Name, rec.Generation); err != nil {
				c.log.Error("pruning", "solution", rec.Name, "err", err)
			}
		}
		switch solution.State(rec.State) {
		case solution.Sleeping:
			c.publish(rec, solution.Sleeping, rec.LastError, nil)
			if up[rec.Name] {
				go c.stopLeftovers(ctx, s, rec, "an interrupted wake")
			}
		case solution.Failed:
			c.publish(rec, solution.Failed, rec.LastError, nil)
		case solution.Deploying:
			// aim stopped during the first deploy: nothing ever served.
			s.set(solution.Failed, interruptedFirst)
			_ = c.store.SetState(ctx, rec.Name, string(solution.Failed), interruptedFirst)
			c.publish(rec, solution.Failed, interruptedFirst, nil)
			if up[rec.Name] {
				go c.stopLeftovers(ctx, s, rec, "an interrupted first deploy")
			}
		default:
			c.publish(rec, solution.Starting, "", nil)
			go c.restore(ctx, s, rec)
		}
	}
	for _, st := range have {
		if _, ok := known[st.Name]; !ok {
			c.log.Info("removing containers of an unknown solution", "solution", st.Name)
			if err := c.rt.Remove(ctx, st.Name); err != nil {
				c.log.Error("removing orphan", "solution", st.Name, "err", err)
			}
		}
	}
	// Last, once the containers that run their images are gone.
	c.settle(ctx, recs)
	return nil
}

// restore brings an adopted solution back to serving: it starts what is
// missing (Apply keeps containers that exist) and waits until it answers.
func (c *Controller) restore(ctx context.Context, s *tracked, rec *store.Solution) {
	s.op.Lock()
	defer s.op.Unlock()
	if cur, _, _ := s.snapshot(); cur == nil {
		return // removed while this waited
	}
	sp := c.runtimeSpec(rec)
	n := replicasFor(rec.Manifest)
	if err := c.rt.Scale(ctx, sp, n); err != nil {
		c.fail(ctx, s, rec, fmt.Sprintf("restarting after aim restarted: %v", commandError(err)))
		return
	}
	addrs, err := c.waitReady(ctx, sp, n)
	if err != nil {
		c.fail(ctx, s, rec, err.Error())
		return
	}
	s.mu.Lock()
	s.state, s.reason, s.replicas = solution.Ready, "", n
	s.mu.Unlock()
	_ = c.store.SetState(ctx, rec.Name, string(solution.Ready), "")
	c.publish(rec, solution.Ready, "", addrs)
}

func (c *Controller) fail(ctx context.Context, s *tracked, rec *store.Solution, reason string) {
	c.log.Warn("solution failed", "solution", rec.Name, "reason", reason)
	s.set(solution.Failed, reason)
	_ = c.store.SetState(ctx, rec.Name, string(solution.Failed), reason)
	c.publish(rec, solution.Failed, reason, nil)
}

// replicasFor is how many replicas a solution runs when awake.
func replicasFor(m *spec.Manifest) int {
	if m.Scaling.Min > 1 {
		return m.Scaling.Min
	}
	return 1
}

// publish tells the gateway about a solution. addrs maps public component
// names to the addresses of their ready replicas.
func (c *Controller) publish(rec *store.Solution, st solution.State, reason string, addrs map[string][]string) {
	rs := gateway.RouteSpec{Name: rec.Name, Title: rec.Manifest.DisplayTitle(), Reason: reason, Hold: rec.Manifest.Scaling.Hold,
		Limits: c.limits(rec.Manifest.Limits), Private: rec.Manifest.IsPrivate(), Owner: rec.Owner, Access: rec.Manifest.Access}
	switch st {
	case solution.Ready:
		rs.State = gateway.StateReady
	case solution.Sleeping:
		rs.State = gateway.StateSleeping
	case solution.Failed:
		rs.State = gateway.StateFailed
	default:
		rs.State = gateway.StateStarting
	}
	n := 0
	for _, comp := range rec.Manifest.PublicComponents() {
		rs.Upstreams = append(rs.Upstreams, gateway.Upstream{Component: comp.Name, Paths: comp.Paths, Addrs: addrs[comp.Name]})
		n = max(n, len(addrs[comp.Name]))
	}
	c.routes.Set(rs)
	c.cfg.Metrics.SetState(rec.Name, string(st), n)
}

// limits resolves a manifest's limits against the platform's defaults and
// caps.
func (c *Controller) limits(l spec.Limits) gateway.Limits {
	return gateway.ResolveLimits(l, c.cfg.Limits, c.cfg.LimitCaps)
}

// resyncAll follows crashes and restarts of awake solutions: the engine
// restarts a crashed container (with back-off) and may give it a new
// address, so the routes follow what the runtime reports.
func (c *Controller) resyncAll(ctx context.Context) {
	c.mu.Lock()
	sols := make([]*tracked, 0, len(c.sols))
	for _, s := range c.sols {
		sols = append(sols, s)
	}
	c.mu.Unlock()
	for _, s := range sols {
		if !s.op.TryLock() {
			continue // a deploy, wake or removal is in charge of it
		}
		rec, st, _ := s.snapshot()
		if rec != nil && rec.Generation > 0 && st == solution.Ready {
			c.resync(ctx, s, rec)
		}
		s.op.Unlock()
	}
}

func (c *Controller) resync(ctx context.Context, s *tracked, rec *store.Solution) {
	status, err := c.rt.Inspect(ctx, rec.Name)
	if errors.Is(err, runtime.ErrNotFound) {
		c.log.Warn("containers vanished; starting them again", "solution", rec.Name)
		go c.restore(ctx, s, rec)
		return
	}
	if err != nil {
		c.log.Error("inspecting", "solution", rec.Name, "err", err)
		return
	}
	c.pruneLeftovers(ctx, rec, status)
	addrs := map[string][]string{}
	var down []string
	n := s.currentReplicas(rec.Manifest)
	for _, comp := range rec.Manifest.Components {
		cs, _ := status.Component(comp.Name)
		running := 0
		for _, r := range cs.Serving(rec.Generation, n) {
			if r.Running && r.Addr != "" {
				running++
				if comp.IsPublic() {
					addrs[comp.Name] = append(addrs[comp.Name], r.Addr)
				}
			} else {
				down = append(down, describeDown(comp.Name, r))
			}
		}
		if running == 0 && len(cs.Serving(rec.Generation, n)) == 0 {
			down = append(down, "component "+comp.Name+" has no container")
		}
	}
	reason := ""
	if len(down) > 0 {
		reason = down[0]
	}
	_, _, prev := s.snapshot()
	if reason != prev {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		if reason != "" {
			c.log.Warn("solution degraded", "solution", rec.Name, "reason", reason)
			_ = c.store.SetState(ctx, rec.Name, string(solution.Ready), reason)
		}
	}
	c.publish(rec, solution.Ready, reason, addrs)
}

func describeDown(comp string, r runtime.Replica) string {
	msg := fmt.Sprintf("component %s is not running", comp)
	switch {
	case r.OOMKilled:
		msg = fmt.Sprintf("component %s was killed for using more than its memory limit", comp)
	case r.ExitCode != 0:
		msg = fmt.Sprintf("component %s exited with code %d", comp, r.ExitCode)
	}
	if r.Restarts > 0 {
		msg += fmt.Sprintf(" (restarted %d times; the engine retries with back-off)", r.Restarts)
	}
	return msg
}
