package router

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/kube"

	"github.com/aimhub/aim/internal/solution"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

// wakeOp is one wake in flight on this replica; every request for the
// solution waits on the same one.
type wakeOp struct {
	done chan struct{}
	err  error
}

// Wake implements gateway.Waker: it scales a sleeping solution's
// Deployments up once, however many requests ask at the same time, and
// returns once the solution can serve (the route is published by then),
// or with a *solution.WakeError (504) saying why not. The wake goes on if
// the request that asked for it goes away.
func (r *Router) Wake(ctx context.Context, name string) error {
	r.mu.Lock()
	st := r.sols[name]
	if st == nil {
		r.mu.Unlock()
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if st.wake == nil {
		st.wake = &wakeOp{done: make(chan struct{})}
		st.poke = make(chan struct{}, 1)
		go r.doWake(name, st, st.wake)
	}
	op := st.wake
	r.mu.Unlock()
	select {
	case <-op.done:
		return op.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Router) doWake(name string, st *solState, op *wakeOp) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.WakeTimeout)
	defer cancel()
	start := time.Now()
	scaled, err := r.wake(ctx, name, st)
	r.cfg.Metrics.Wake(name, err == nil, scaled.Sub(start).Seconds(), time.Since(scaled).Seconds())
	r.mu.Lock()
	st.waking = false
	r.mu.Unlock()
	// Published before the waiters return, so that they find the replicas.
	r.sync(context.WithoutCancel(ctx), name)
	if err != nil {
		r.log.Warn("wake failed", "solution", name, "err", err)
		op.err = err
	} else {
		r.log.Info("woke", "solution", name, "took", time.Since(start))
	}
	r.mu.Lock()
	st.wake, st.poke = nil, nil
	r.mu.Unlock()
	close(op.done)
}

// wake scales the solution up and waits until wakeDone. It returns when
// the scale-up was asked for, for the metrics.
func (r *Router) wake(ctx context.Context, name string, st *solState) (time.Time, error) {
	now := time.Now()
	in, _, err := r.input(ctx, name)
	if err != nil {
		return now, &solution.WakeError{Msg: err.Error()}
	}
	if in == nil {
		return now, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if in.m == nil {
		return now, &solution.WakeError{Msg: "its spec is invalid: " + in.invalid.Error()}
	}
	if wakeDone(in) {
		return now, nil
	}
	r.mu.Lock()
	st.waking = true
	poke := st.poke
	r.mu.Unlock()
	m := in.m
	if err := r.scaleFromZero(ctx, name, st, kube.AwakeReplicas(m), len(m.Components)); err != nil {
		return now, &solution.WakeError{Msg: err.Error()}
	}
	scaled := time.Now()

	probing := map[string]bool{}
	answered := make(chan string, 8)
	fallback := time.NewTicker(100 * time.Millisecond)
	defer fallback.Stop()
	for {
		in, _, err := r.input(ctx, name)
		switch {
		case err != nil:
			r.log.Warn("wake: reading the solution", "solution", name, "err", err)
		case in == nil:
			return scaled, fmt.Errorf("solution %s was removed while waking: %w", name, solution.ErrNotFound)
		case wakeDone(in):
			return scaled, nil
		default:
			// The kubelet probes readiness once a second; the gateway
			// probes a new pod itself and uses it as soon as it answers,
			// as Knative's activator does.
			for _, c := range in.m.PublicComponents() {
				for _, a := range in.eps[c.Name].starting {
					if !probing[a] {
						probing[a] = true
						r.log.Debug("wake: probing a new pod", "solution", name, "addr", a, "after", time.Since(scaled))
						go probe(ctx, a, c, answered)
					}
				}
			}
		}
		select {
		case a := <-answered:
			r.log.Debug("wake: a new pod answered", "solution", name, "addr", a, "after", time.Since(scaled))
			r.mu.Lock()
			st.probed[a] = time.Now()
			r.mu.Unlock()
		case <-poke:
		case <-fallback.C:
		case <-ctx.Done():
			return scaled, r.wakeFailed(name, m)
		}
	}
}

// wakeFailed says why a wake did not finish in time, and scales the
// solution back to zero so that the next request tries afresh (as on
// Docker) instead of finding half a solution.
func (r *Router) wakeFailed(name string, m *spec.Manifest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	why := kube.Diagnose(ctx, r.kc, r.cfg.Namespace, name)
	if err := kube.ScaleTo(ctx, r.kc, r.cfg.Namespace, name, 0, false); err != nil {
		r.log.Warn("cannot scale back to zero after a failed wake", "solution", name, "err", err)
	}
	return &solution.WakeError{Msg: fmt.Sprintf("not ready after %s: %s", r.cfg.WakeTimeout, why)}
}

// scaleFromZero scales a sleeping solution's Deployments up to n, all at
// once. The names are those an earlier wake listed, so that a wake costs
// the API server one call per component and nothing before them; each call
// is a JSON patch that sets n only if the Deployment is at 0, so that one
// scaled meanwhile (by another replica's wake, or out under load) is left
// as it is. Without names, or when one is gone, it lists them.
func (r *Router) scaleFromZero(ctx context.Context, name string, st *solState, n int32, components int) error {
	r.mu.Lock()
	names := st.deployments
	r.mu.Unlock()
	if len(names) != components {
		return r.listAndScale(ctx, name, st, n)
	}
	patch := []byte(fmt.Sprintf(`[{"op":"test","path":"/spec/replicas","value":0},{"op":"replace","path":"/spec/replicas","value":%d}]`, n))
	deps := r.kc.AppsV1().Deployments(r.cfg.Namespace)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, d := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := deps.Patch(ctx, d, types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager}, "scale")
			if err == nil || apierrors.IsNotFound(err) {
				errs[i] = err
				return
			}
			// Not at 0 (the test failed), or another error: look.
			sc, gerr := deps.GetScale(ctx, d, metav1.GetOptions{})
			if gerr != nil {
				errs[i] = fmt.Errorf("scaling deployment %s to %d: %w (then %v)", d, n, err, gerr)
				return
			}
			if sc.Spec.Replicas >= n {
				return
			}
			_, errs[i] = deps.Patch(ctx, d, types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n)), metav1.PatchOptions{FieldManager: kube.FieldManager}, "scale")
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if apierrors.IsNotFound(err) {
			return r.listAndScale(ctx, name, st, n)
		}
	}
	return errors.Join(errs...)
}

// listAndScale lists a solution's Deployments, remembers their names, and
// scales those below n up.
func (r *Router) listAndScale(ctx context.Context, name string, st *solState, n int32) error {
	deps, err := r.kc.AppsV1().Deployments(r.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + name})
	if err != nil {
		return fmt.Errorf("listing the deployments of %s: %w", name, err)
	}
	names := make([]string, 0, len(deps.Items))
	for _, d := range deps.Items {
		names = append(names, d.Name)
	}
	r.mu.Lock()
	st.deployments = names
	r.mu.Unlock()
	return kube.ScaleDeployments(ctx, r.kc, r.cfg.Namespace, name, deps.Items, n, true)
}

// probeClient probes pods directly; no keep-alive, the pod is probed once.
var probeClient = &http.Client{
	Timeout:   time.Second,
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// probe asks addr for the component's ready path until the answer means
// ready by the Docker runtime's rule (spec.Component's ReadyAnswer: 2xx
// at ready.path, else below 500 at /), then sends addr on answered.
func probe(ctx context.Context, addr string, c spec.Component, answered chan<- string) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.ReadyPath(), nil)
		if err != nil {
			return
		}
		req.Header.Set("User-Agent", "aim-gateway-wake-probe")
		if resp, err := probeClient.Do(req); err == nil {
			resp.Body.Close()
			if c.ReadyAnswer(resp.StatusCode) {
				select {
				case answered <- addr:
				case <-ctx.Done():
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
