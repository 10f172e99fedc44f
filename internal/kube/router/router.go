// Package router keeps an in-cluster gateway's route table in step with the
// Solutions and their EndpointSlices, wakes sleeping solutions by scaling
// their Deployments (one wake per solution and replica), and writes the
// last activity it saw to each Solution, from which the operator judges
// idleness. Its Router implements gateway.Waker.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimhub/aim/internal/kube"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/spec"
)

// Config configures a Router. Zero values take the defaults named.
type Config struct {
	// Namespace whose Solutions are served. Required.
	Namespace string
	// Routes is the gateway's table the Router keeps. Required.
	Routes *gateway.Table
	// Limits fill a Solution's unset limits; LimitCaps bound what it may
	// ask for (gateway.ResolveLimits). Zero fields mean none.
	Limits, LimitCaps spec.Limits
	// WakeTimeout bounds one wake. Zero means 2m.
	WakeTimeout time.Duration
	// ActivityInterval is how often activity is written to Solutions.
	// Zero means 5s.
	ActivityInterval time.Duration
	// MaxIdleWithConnections caps how long open WebSockets and event
	// streams alone keep a solution awake. Zero means 4h.
	MaxIdleWithConnections time.Duration
	// SiblingDelay is how long a solution's private components must have
	// been ready before a solution coming up is routed to: its siblings
	// reach them through Services, whose rules kube-proxy rewrites at most
	// once a second (its iptables minSyncPeriod). Zero means 1s; negative
	// means none.
	SiblingDelay time.Duration
	// Metrics; nil records nothing.
	Metrics *metrics.Metrics
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.WakeTimeout == 0 {
		c.WakeTimeout = 2 * time.Minute
	}
	if c.ActivityInterval == 0 {
		c.ActivityInterval = 5 * time.Second
	}
	if c.MaxIdleWithConnections == 0 {
		c.MaxIdleWithConnections = 4 * time.Hour
	}
	if c.SiblingDelay == 0 {
		c.SiblingDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Router keeps a gateway's table in step with a namespace's Solutions and
// their EndpointSlices, wakes solutions (gateway.Waker) and reports their
// activity. Its only state is derived: a replica that restarts rebuilds it
// from the cluster and its own requests.
type Router struct {
	cfg   Config
	cache cache.Cache
	// client writes (the activity annotation) and reads past the cache.
	client client.Client
	kc     kubernetes.Interface
	log    *slog.Logger

	// dirty names the solutions to sync again; kick wakes the sync loop.
	dirtyMu sync.Mutex
	dirty   map[string]bool
	kick    chan struct{}

	// watchPods is true when the gateway may watch pods: wakes then see a
	// new pod's address before its EndpointSlice does.
	watchPods bool

	// syncMu serialises syncs, so that routes are published in order.
	syncMu sync.Mutex
	mu     sync.Mutex // guards sols and everything in them
	sols   map[string]*solState
	synced atomic.Bool
}

// solState is what a Router keeps per solution.
type solState struct {
	published *gateway.RouteSpec
	// lastGood is the last valid manifest, used while the spec is invalid.
	lastGood *spec.Manifest
	// probed are starting addresses that answered a wake's probe, with
	// when.
	probed map[string]time.Time
	wake   *wakeOp
	// waking gates the route while this replica's wake is not done.
	waking bool
	// poke tells a wake that the solution's objects changed.
	poke chan struct{}
	act  activity
	// privateSince is when every private component last came to have a
	// ready replica; zero while one has none.
	privateSince time.Time
	// deployments are the names of the solution's Deployments, as a wake
	// last listed them.
	deployments []string
}

// probeTrust is how long an address that answered a wake's probe is used
// without the kubelet calling it ready.
const probeTrust = 30 * time.Second

var _ gateway.Waker = (*Router)(nil)

// New connects to the cluster; Run serves.
func New(rc *rest.Config, cfg Config) (*Router, error) {
	cfg = cfg.withDefaults()
	if cfg.Namespace == "" || cfg.Routes == nil {
		return nil, errors.New("kube router: a namespace and a route table are required")
	}
	scheme, err := kube.Scheme()
	if err != nil {
		return nil, err
	}
	// Only the slices of aim's Services: they carry the Service's
	// aim.dev/solution label.
	own, err := labels.NewRequirement(v1alpha1.LabelSolution, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	byObject := map[client.Object]cache.ByObject{
		&discoveryv1.EndpointSlice{}: {Label: labels.NewSelector().Add(*own)},
	}
	watchPods := mayWatchPods(kc, cfg.Namespace, cfg.Logger)
	if watchPods {
		byObject[&corev1.Pod{}] = cache.ByObject{Label: labels.NewSelector().Add(*own)}
	}
	c, err := cache.New(rc, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject:          byObject,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the cache: %w", err)
	}
	cl, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	return &Router{
		cfg: cfg, cache: c, client: cl, kc: kc, log: cfg.Logger, watchPods: watchPods,
		dirty: map[string]bool{}, kick: make(chan struct{}, 1), sols: map[string]*solState{},
	}, nil
}

// mayWatchPods asks the API server whether the gateway may list and watch
// the namespace's pods. Without that permission it routes from
// EndpointSlices alone, and says so: a wake then learns of a new pod a
// little later.
func mayWatchPods(kc kubernetes.Interface, ns string, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, verb := range []string{"list", "watch"} {
		r, err := kc.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Resource: "pods",
			}},
		}, metav1.CreateOptions{})
		if err != nil || !r.Status.Allowed {
			log.Warn("not watching pods (grant list and watch on pods for faster wakes); waking from EndpointSlices alone", "verb", verb, "err", err)
			return false
		}
	}
	return true
}

// Synced is true once every Solution of the namespace has its route.
func (r *Router) Synced() bool { return r.synced.Load() }

// Run watches the cluster and keeps the table until ctx ends. ready, if
// not nil, is called once the table holds every solution.
func (r *Router) Run(ctx context.Context, ready func()) error {
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { r.markObj(o) },
		UpdateFunc: func(_, o any) { r.markObj(o) },
		DeleteFunc: func(o any) { r.markObj(o) },
	}
	watched := []client.Object{&v1alpha1.Solution{}, &discoveryv1.EndpointSlice{}}
	if r.watchPods {
		watched = append(watched, &corev1.Pod{})
	}
	for _, obj := range watched {
		inf, err := r.cache.GetInformer(ctx, obj, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- r.cache.Start(ctx) }()
	if !r.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-cacheErr:
			return fmt.Errorf("watching solutions in %s: %w", r.cfg.Namespace, err)
		default:
			return fmt.Errorf("watching solutions in %s: %w", r.cfg.Namespace, ctx.Err())
		}
	}
	var sols v1alpha1.SolutionList
	if err := r.cache.List(ctx, &sols, client.InNamespace(r.cfg.Namespace)); err != nil {
		return fmt.Errorf("listing solutions: %w", err)
	}
	for i := range sols.Items {
		r.sync(ctx, sols.Items[i].Name)
	}
	r.synced.Store(true)
	r.log.Info("routes synced", "namespace", r.cfg.Namespace, "solutions", len(sols.Items))
	if ready != nil {
		ready()
	}
	go r.reportActivity(ctx)

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-cacheErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watching solutions in %s: %w", r.cfg.Namespace, err)
		case <-r.kick:
		case <-tick.C:
			// Addresses a wake probed stop being trusted after a while,
			// and private components count once ready for SiblingDelay:
			// look again at the solutions that wait for either.
			r.mu.Lock()
			for name, st := range r.sols {
				if len(st.probed) > 0 || !st.privateSince.IsZero() && time.Since(st.privateSince) < 2*r.cfg.SiblingDelay {
					r.mark(name)
				}
			}
			r.mu.Unlock()
		}
		r.dirtyMu.Lock()
		names := make([]string, 0, len(r.dirty))
		for n := range r.dirty {
			names = append(names, n)
		}
		clear(r.dirty)
		r.dirtyMu.Unlock()
		sort.Strings(names)
		for _, n := range names {
			r.sync(ctx, n)
		}
	}
}

// markObj marks the solution an object belongs to.
func (r *Router) markObj(o any) {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	switch obj := o.(type) {
	case *v1alpha1.Solution:
		r.markAndPoke(obj.Name)
	case *discoveryv1.EndpointSlice:
		if n := obj.Labels[v1alpha1.LabelSolution]; n != "" {
			r.markAndPoke(n)
		}
	case *corev1.Pod:
		// Only a wake looks at pods; routes follow the slices.
		if n := obj.Labels[v1alpha1.LabelSolution]; n != "" {
			r.poke(n)
		}
	}
}

func (r *Router) markAndPoke(name string) {
	r.mark(name)
	r.poke(name)
}

// poke tells a wake in flight that the solution's objects changed.
func (r *Router) poke(name string) {
	r.mu.Lock()
	if st := r.sols[name]; st != nil && st.poke != nil {
		select {
		case st.poke <- struct{}{}:
		default:
		}
	}
	r.mu.Unlock()
}

// mark queues a solution for a sync.
func (r *Router) mark(name string) {
	r.dirtyMu.Lock()
	r.dirty[name] = true
	r.dirtyMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// input reads what a solution's route is computed from, from the cache.
// It returns nil when the solution is gone or being deleted.
func (r *Router) input(ctx context.Context, name string) (*routeInput, *solState, error) {
	sol := &v1alpha1.Solution{}
	err := r.cache.Get(ctx, types.NamespacedName{Namespace: r.cfg.Namespace, Name: name}, sol)
	if apierrors.IsNotFound(err) || err == nil && !sol.DeletionTimestamp.IsZero() {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading solution %s: %w", name, err)
	}
	var sl discoveryv1.EndpointSliceList
	if err := r.cache.List(ctx, &sl, client.InNamespace(r.cfg.Namespace), client.MatchingLabels{v1alpha1.LabelSolution: name}); err != nil {
		return nil, nil, fmt.Errorf("reading the endpoints of %s: %w", name, err)
	}
	in := &routeInput{sol: sol, eps: endpointsOf(sl.Items), probed: map[string]bool{}}
	if r.watchPods {
		var pl corev1.PodList
		if err := r.cache.List(ctx, &pl, client.InNamespace(r.cfg.Namespace), client.MatchingLabels{v1alpha1.LabelSolution: name}); err != nil {
			return nil, nil, fmt.Errorf("reading the pods of %s: %w", name, err)
		}
		addStartingPods(in.eps, pl.Items)
	}
	m, err := v1alpha1.ToManifest(name, sol.Spec)

	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.sols[name]
	if st == nil {
		st = &solState{probed: map[string]time.Time{}}
		r.sols[name] = st
	}
	if err != nil {
		in.m, in.invalid = st.lastGood, err
	} else {
		in.m, st.lastGood = m, m
	}
	now := time.Now()
	if in.m != nil && privateComponentsReady(in.m, in.eps) {
		if st.privateSince.IsZero() {
			st.privateSince = now
		}
		in.privateReady = len(in.m.PublicComponents()) == len(in.m.Components) || now.Sub(st.privateSince) >= r.cfg.SiblingDelay
	} else {
		st.privateSince = time.Time{}
	}
	starting := map[string]bool{}
	for _, e := range in.eps {
		for _, a := range e.starting {
			starting[a] = true
		}
	}
	for a, at := range st.probed {
		// Ready (no longer needed), gone, terminating or trusted long
		// enough without the kubelet agreeing.
		if !starting[a] || now.Sub(at) > probeTrust {
			delete(st.probed, a)
			continue
		}
		in.probed[a] = true
	}
	in.waking = st.waking
	return in, st, nil
}

// sync publishes a solution's route when it changed.
func (r *Router) sync(ctx context.Context, name string) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	in, st, err := r.input(ctx, name)
	if err != nil {
		r.log.Warn("cannot sync route", "solution", name, "err", err)
		return
	}
	if in == nil {
		r.mu.Lock()
		_, had := r.sols[name]
		delete(r.sols, name)
		r.mu.Unlock()
		if had {
			r.cfg.Routes.Delete(name)
			r.cfg.Metrics.Forget(name)
			r.log.Info("route removed", "solution", name)
		}
		return
	}
	rs := buildRoute(in, r.limits)
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := st.published
	if prev != nil && reflect.DeepEqual(*prev, rs) {
		return
	}
	r.cfg.Routes.Set(rs)
	if prev == nil || rs.State == gateway.StateReady && prev.State != gateway.StateReady {
		// The table stamped the route as active; that was no request.
		if last, _, ok := r.cfg.Routes.Activity(name); ok && last.After(st.act.baseline) {
			st.act.baseline = last
		}
	}
	st.published = &rs
	n := 0
	for _, u := range rs.Upstreams {
		n = max(n, len(u.Addrs))
	}
	r.cfg.Metrics.SetState(name, string(rs.State), n)
	if prev == nil || prev.State != rs.State {
		r.log.Info("route", "solution", name, "state", string(rs.State), "replicas", n, "reason", rs.Reason)
	}
}

func (r *Router) limits(l spec.Limits) gateway.Limits {
	return gateway.ResolveLimits(l, r.cfg.Limits, r.cfg.LimitCaps)
}

// reportActivity writes, every interval, the solutions' last activity
// this replica saw to their aim.dev/last-active annotations.
func (r *Router) reportActivity(ctx context.Context) {
	t := time.NewTicker(r.cfg.ActivityInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			r.reportOnce(ctx, now)
		}
	}
}

func (r *Router) reportOnce(ctx context.Context, now time.Time) {
	type seen struct {
		name     string
		last     time.Time
		inflight int64
		act      activity
	}
	var all []seen
	r.mu.Lock()
	for name, st := range r.sols {
		if st.published == nil {
			continue
		}
		if last, inflight, ok := r.cfg.Routes.Activity(name); ok {
			all = append(all, seen{name, last, inflight, st.act})
		}
	}
	r.mu.Unlock()
	for _, s := range all {
		sol := &v1alpha1.Solution{}
		if err := r.cache.Get(ctx, types.NamespacedName{Namespace: r.cfg.Namespace, Name: s.name}, sol); err != nil {
			continue
		}
		at, ok := nextReport(now, s.last, s.inflight, s.act, lastActiveOf(sol), r.cfg.MaxIdleWithConnections)
		if !ok {
			continue
		}
		if _, err := writeActivity(ctx, r.client, r.client, sol, at, r.log); err != nil {
			r.log.Warn("cannot report activity", "solution", s.name, "err", err)
			continue
		}
		r.mu.Lock()
		if st := r.sols[s.name]; st != nil && at.After(st.act.reported) {
			st.act.reported = at
		}
		r.mu.Unlock()
	}
}
