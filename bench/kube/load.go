package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/operator"
)

// result is what one run measured.
type result struct {
	side       string
	solutions  int
	components int
	loadBefore string
	loadAfter  string
	// From the first create on: until the harness's last create was
	// answered; until every Deployment existed; until every Deployment
	// was available; until every Solution was Ready (floor: until its
	// Deployments were available).
	created, deployments, available, ready time.Duration
	// perSolution is each solution's time from its create's answer until
	// it was Ready, sorted.
	perSolution []time.Duration
	// oneMore is, once all n are Ready, the time from sending the create
	// of one more solution until it is Ready: what a user deploying on
	// a cluster that already serves n waits.
	oneMore time.Duration
	op      *opResult // nil on the floor
	// cpu is the CPU time each process of the cluster used during the
	// run, in start order, then the operator's.
	cpu []procCPUTime
}

type procCPUTime struct {
	name string
	cpu  time.Duration
}

// opResult is the operator's footprint and work during a run.
type opResult struct {
	hwm, rssEnd       int64 // bytes: peak RSS (VmHWM), RSS at the end
	heapPeak, heapEnd int64 // bytes: go_memstats_heap_inuse_bytes, peak of 1 s samples and at the end
	cpu               time.Duration
	requests          float64 // API requests the operator made
	reconciles        float64
	meanReconcile     time.Duration
	meanQueueWait     time.Duration
	peakDepth         float64
}

func (r result) rate() float64 {
	if r.ready <= 0 {
		return 0
	}
	return float64(r.solutions) / r.ready.Seconds()
}

func (r result) summary() string {
	s := fmt.Sprintf("created in %s, all Ready after %s (%.1f solutions/s)", secs(r.created), secs(r.ready), r.rate())
	if r.op != nil {
		s += fmt.Sprintf("; operator peak RSS %s, peak heap %s, %.0f API requests, %.0f reconciles", mib(r.op.hwm), mib(r.op.heapPeak), r.op.requests, r.op.reconciles)
	}
	return s
}

// tracker follows Solutions and Deployments through watches and notes
// when each milestone is reached.
type tracker struct {
	floor      bool
	want       int // solutions
	components int
	start      time.Time

	mu          sync.Mutex
	created     map[string]time.Time
	deployments map[string]bool
	available   map[string]bool
	availableBy map[string]int // solution → available Deployments
	ready       map[string]time.Time
	tDeploy     time.Time
	tAvail      time.Time
	tReady      time.Time
	done        chan struct{}
	// extra is the solution created after all the others; extraReady is
	// closed when it is Ready.
	extra      string
	extraReady chan struct{}
	// nodeDown is closed when a node stops being Ready: kwok fell behind
	// with its heartbeats, pods on it are marked not ready, and the run
	// measures kwok rather than the operator.
	nodeDown     chan struct{}
	nodeDownOnce sync.Once
	nodeDownMsg  string
}

func newTracker(floor bool, n, components int) *tracker {
	return &tracker{
		floor: floor, want: n, components: components,
		created: map[string]time.Time{}, deployments: map[string]bool{}, available: map[string]bool{},
		availableBy: map[string]int{}, ready: map[string]time.Time{}, done: make(chan struct{}),
		nodeDown: make(chan struct{}), extra: solutionName(n), extraReady: make(chan struct{}),
	}
}

func (t *tracker) onNode(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
			t.nodeDownOnce.Do(func() {
				t.mu.Lock()
				t.nodeDownMsg = fmt.Sprintf("node %s turned %s Ready (%s: %s) after %s", n.Name, c.Status, c.Reason, c.Message, secs(time.Since(t.start)))
				t.mu.Unlock()
				close(t.nodeDown)
			})
		}
	}
}

func (t *tracker) onDeployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.deployments[d.Name] {
		t.deployments[d.Name] = true
		if len(t.deployments) == t.want*t.components {
			t.tDeploy = now
		}
	}
	if t.available[d.Name] || !rolledOut(d) {
		return
	}
	t.available[d.Name] = true
	if len(t.available) == t.want*t.components {
		t.tAvail = now
	}
	if t.floor {
		sol := d.Labels[v1alpha1.LabelSolution]
		t.availableBy[sol]++
		if t.availableBy[sol] == t.components {
			t.readyLocked(sol, now)
		}
	}
}

func (t *tracker) onSolution(obj any) {
	s, ok := obj.(*v1alpha1.Solution)
	if !ok || !meta.IsStatusConditionTrue(s.Status.Conditions, v1alpha1.ConditionReady) {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.readyLocked(s.Name, now)
}

func (t *tracker) readyLocked(name string, now time.Time) {
	if _, ok := t.ready[name]; ok {
		return
	}
	t.ready[name] = now
	if name == t.extra {
		close(t.extraReady)
		return
	}
	if len(t.ready) == t.want {
		t.tReady = now
		close(t.done)
	}
}

func (t *tracker) markCreated(name string) {
	now := time.Now()
	t.mu.Lock()
	t.created[name] = now
	t.mu.Unlock()
}

func (t *tracker) counts() (created, deployments, available, ready int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.created), len(t.deployments), len(t.available), len(t.ready)
}

// rolledOut is the operator's test of a Deployment being done: its
// current template runs with every replica available.
func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return want > 0 && s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want &&
		s.Replicas <= s.UpdatedReplicas && s.AvailableReplicas >= want
}

// measure creates n solutions (or on the floor their objects) and waits
// until all are Ready.
func measure(ctx context.Context, cl *cluster, op *operatorProc, c config, side string, n int, res *result) error {
	floor := side == sideFloor
	t := newTracker(floor, n, c.components)
	scheme, err := operator.Scheme()
	if err != nil {
		return err
	}
	// Watches, not polls: an informer per kind, in the harness, with no
	// client-side limit.
	inf, err := cache.New(cl.adminCfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Label: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/managed-by": "aim-operator"})},
		},
	})
	if err != nil {
		return err
	}
	cacheCtx, stopCache := context.WithCancel(ctx)
	defer stopCache()
	handlers := []struct {
		obj client.Object
		f   func(any)
	}{{&appsv1.Deployment{}, t.onDeployment}, {&corev1.Node{}, t.onNode}}
	if !floor {
		handlers = append(handlers, struct {
			obj client.Object
			f   func(any)
		}{&v1alpha1.Solution{}, t.onSolution})
	}
	for _, h := range handlers {
		i, err := inf.GetInformer(cacheCtx, h.obj)
		if err != nil {
			return err
		}
		f := h.f
		if _, err := i.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    f,
			UpdateFunc: func(_, obj any) { f(obj) },
		}); err != nil {
			return err
		}
	}
	go inf.Start(cacheCtx)
	if !inf.WaitForCacheSync(ctx) {
		return errors.New("the harness's watches did not sync")
	}

	pids := cl.pids()
	cpuBefore := cpuTimes(pids)
	var smp *sampler
	if op != nil {
		smp = op.sample(ctx)
		pids = append(pids, procPID{"operator", op.pid()})
		cpuBefore = cpuTimes(pids)
	}

	profile := func(query, kind string) error {
		if op == nil || op.pprof == "" {
			return nil
		}
		path := filepath.Join(c.profile, fmt.Sprintf("%s-%s-%d.pprof", kind, side, n))
		if err := op.saveProfile(ctx, query, path); err != nil {
			return err
		}
		step("wrote %s", path)
		return nil
	}
	cpuProfile := make(chan error, 1)
	t.start = time.Now()
	go func() { cpuProfile <- profile("profile?seconds=60", "cpu") }()
	createErr := make(chan error, 1)
	go func() { createErr <- create(ctx, cl.admin, t, floor, n, c.components, c.workers) }()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	createsDone := false
	for {
		select {
		case err := <-createErr:
			if err != nil {
				return err
			}
			res.created = time.Since(t.start)
			createsDone = true
			createErr = nil
			continue
		case <-t.done:
		case <-ctx.Done():
			return fmt.Errorf("not every solution Ready in time: %s: %w", progress(t, smp), ctx.Err())
		case <-t.nodeDown:
			t.mu.Lock()
			msg := t.nodeDownMsg
			t.mu.Unlock()
			return fmt.Errorf("%s: kwok's heartbeats fell behind, so the run is void: %s", msg, progress(t, smp))
		case <-cl.died:
			return fmt.Errorf("a process of the cluster exited during the run: %s", progress(t, smp))
		case <-tick.C:
			if op != nil && op.p.exited() {
				return fmt.Errorf("the operator exited (%v) during the run: %s", op.p.cmd.ProcessState, progress(t, smp))
			}
			step("%s %d, after %s: %s (load average %s)", side, n, secs(time.Since(t.start)), progress(t, smp), loadAvg())
			continue
		}
		break
	}
	if !createsDone {
		// Ready before the last create was answered: impossible, but
		// wait for the answer rather than report a wrong create time.
		if err := <-createErr; err != nil {
			return err
		}
		res.created = time.Since(t.start)
	}

	t.mu.Lock()
	res.ready = t.tReady.Sub(t.start)
	res.deployments = t.tDeploy.Sub(t.start)
	if t.tAvail.IsZero() {
		// Ready is observed before the last available Deployment, when
		// the operator's own read arrives before the harness's watch.
		t.tAvail = t.tReady
	}
	res.available = t.tAvail.Sub(t.start)
	for name, r := range t.ready {
		res.perSolution = append(res.perSolution, max(0, r.Sub(t.created[name])))
	}
	t.mu.Unlock()
	slices.Sort(res.perSolution)

	if err := profile("heap?gc=1", "heap"); err != nil {
		return err
	}
	cpuAfter := cpuTimes(pids)
	if res.oneMore, err = createOneMore(ctx, cl.admin, t, floor, c.components); err != nil {
		return err
	}
	for i, p := range pids {
		res.cpu = append(res.cpu, procCPUTime{p.name, cpuAfter[i] - cpuBefore[i]})
	}
	if smp != nil {
		smp.stop(ctx, op)
		f, l := smp.first, smp.latest()
		if l.scrapeError != nil {
			return fmt.Errorf("the last read of the operator's metrics: %w", l.scrapeError)
		}
		o := &opResult{
			hwm: l.hwm, rssEnd: l.rss, heapPeak: smp.peakHeap, heapEnd: l.heapInuse,
			cpu:      l.cpu - f.cpu,
			requests: l.requests - f.requests, reconciles: l.reconciles - f.reconciles,
			peakDepth: smp.peakDepth,
		}
		if o.reconciles > 0 {
			o.meanReconcile = time.Duration((l.reconcileS - f.reconcileS) / o.reconciles * float64(time.Second))
		}
		if k := l.queueWaitN - f.queueWaitN; k > 0 {
			o.meanQueueWait = time.Duration((l.queueWaitS - f.queueWaitS) / k * float64(time.Second))
		}
		res.op = o
	}
	// After the measurements: a run shorter than the profile waits for it.
	return <-cpuProfile
}

func progress(t *tracker, smp *sampler) string {
	c, d, a, r := t.counts()
	s := fmt.Sprintf("%d of %d created, %d Deployments, %d available, %d Ready", c, t.want, d, a, r)
	if smp != nil {
		x := smp.latest()
		s += fmt.Sprintf("; operator RSS %s, heap %s, %.0f API requests, %.0f reconciles, queue %.0f", mib(x.rss), mib(x.heapInuse), x.requests, x.reconciles, x.queueDepth)
	}
	return s
}

// create makes n solutions (on the floor: the objects the operator would
// make for them) with the given number of concurrent workers.
func create(ctx context.Context, c client.Client, t *tracker, floor bool, n, components, workers int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				name := solutionName(i)
				if err := createSolution(ctx, c, benchSolution(name, components), floor); err != nil {
					cancel(fmt.Errorf("creating %s: %w", name, err))
					return
				}
				t.markCreated(name)
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// createSolution creates sol, or on the floor the objects the operator
// would render for it.
func createSolution(ctx context.Context, c client.Client, sol *v1alpha1.Solution, floor bool) error {
	if floor {
		return createRendered(ctx, c, sol)
	}
	return retry(ctx, func() error { return c.Create(ctx, sol) })
}

// createOneMore creates one more solution (on the floor, its objects)
// once the others are Ready, and times it until it is Ready.
func createOneMore(ctx context.Context, c client.Client, t *tracker, floor bool, components int) (time.Duration, error) {
	start := time.Now()
	if err := createSolution(ctx, c, benchSolution(t.extra, components), floor); err != nil {
		return 0, fmt.Errorf("creating one more solution, %s: %w", t.extra, err)
	}
	select {
	case <-t.extraReady:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.ready[t.extra].Sub(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("one more solution, %s, not Ready in time: %w", t.extra, ctx.Err())
	}
}

func solutionName(i int) string { return fmt.Sprintf("bench-%05d", i) }

// benchSolution is a solution of one or two components. Images need not
// exist: kwok runs no containers.
func benchSolution(name string, components int) *v1alpha1.Solution {
	s := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1alpha1.SolutionSpec{
			Title:      "bench/kube " + name,
			Components: []v1alpha1.Component{{Name: "web", Image: "registry.example/bench/web:1"}},
		},
	}
	if components > 1 {
		private := false
		s.Spec.Components = append(s.Spec.Components, v1alpha1.Component{Name: "model", Image: "registry.example/bench/model:1", Public: &private})
	}
	return s
}

// createRendered creates what operator.Render makes of sol, without owner
// references (there is no Solution to own them).
func createRendered(ctx context.Context, c client.Client, sol *v1alpha1.Solution) error {
	m, err := v1alpha1.ToManifest(sol.Name, sol.Spec)
	if err != nil {
		return err
	}
	sol.UID = types.UID("floor")
	opts := operator.Options{
		Domain:           "aim.example.com",
		URLScheme:        "http",
		GatewayNamespace: namespace,
		GatewayLabels:    map[string]string{"app.kubernetes.io/name": "aim", "app.kubernetes.io/instance": "aim", "app.kubernetes.io/component": "gateway"},
	}
	for _, ac := range operator.Render(sol, m, opts, nil, 1) {
		b, err := json.Marshal(ac)
		if err != nil {
			return err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return err
		}
		u.SetOwnerReferences(nil)
		if err := retry(ctx, func() error { return c.Create(ctx, u.DeepCopy()) }); err != nil {
			return fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

// retry repeats f on the answers that mean "later": too many requests,
// timeouts, an unavailable server.
func retry(ctx context.Context, f func() error) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt == 8 || !(apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

type procPID struct {
	name string
	pid  int
}

func (cl *cluster) pids() []procPID {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var out []procPID
	for _, p := range cl.procs {
		out = append(out, procPID{p.name, p.cmd.Process.Pid})
	}
	return out
}

func cpuTimes(pids []procPID) []time.Duration {
	out := make([]time.Duration, len(pids))
	for i, p := range pids {
		out[i], _ = procCPU(p.pid)
	}
	return out
}
