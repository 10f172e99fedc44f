package operator

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/aimhub/aim/api/v1alpha1"
)

// Config is how the operator process runs.
type Config struct {
	Options
	// Namespace is the one namespace whose Solutions are served. Empty
	// means every namespace (and needs cluster-wide permissions).
	Namespace string
	// MetricsAddr serves Prometheus metrics at /metrics. Empty or "0"
	// turns them off.
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz. Empty or "0" turns them off.
	HealthAddr string
	// LeaderElect runs one active replica at a time, holding a Lease.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease. Empty means the pod's own
	// namespace (and is an error outside a cluster).
	LeaderElectionNamespace string
	// QPS limits, on the operator's side, the requests it sends to the
	// API server: so many a second for each of its clients
	// (controller-runtime keeps one per kind of object), with bursts of
	// Burst. Zero or less means no limit here: the API server's Priority
	// and Fairness shares its capacity among its clients, as it does for
	// controller-runtime's own config loader. Whatever restCfg says is
	// replaced: client-go's default there (5 a second, bursts of 10)
	// held the operator back (docs/benchmarks.md).
	QPS float32
	// Burst is how many requests above QPS a client may send at once.
	// Zero means twice QPS; it has no effect without QPS.
	Burst int
	// Workers is how many Solutions are reconciled at once (never the
	// same one twice). Zero means 8.
	Workers int
	// PprofAddr serves Go's profiles at /debug/pprof/. Empty or "0"
	// turns them off; they may reveal what the operator holds, so keep
	// the address private.
	PprofAddr string
	// Logger receives the operator's logs and controller-runtime's.
	// Nil means slog.Default().
	Logger *slog.Logger
}

// Scheme knows the types the operator reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewManager builds the controller manager with the Solution controller
// in it; Start runs it.
func NewManager(restCfg *rest.Config, c Config) (ctrl.Manager, error) {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	metricsAddr, healthAddr := c.MetricsAddr, c.HealthAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	if healthAddr == "" {
		healthAddr = "0"
	}
	restCfg = rest.CopyConfig(restCfg)
	restCfg.QPS, restCfg.Burst = -1, 0
	if c.QPS > 0 {
		restCfg.QPS = c.QPS
		restCfg.Burst = cmp.Or(c.Burst, int(math.Ceil(2*float64(c.QPS))))
	}
	// Only the operator's own objects are cached: a cluster's every
	// Deployment and Service would cost memory for nothing.
	own := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{labelManagedBy: fieldManager})}
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.Deployment{}:          own,
		&corev1.Service{}:             own,
		&networkingv1.NetworkPolicy{}: own,
		&appsv1.ControllerRevision{}:  own,
	}}
	if c.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{c.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logr.FromSlogHandler(log.Handler()),
		Cache:                         cacheOpts,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        healthAddr,
		PprofBindAddress:              c.PprofAddr,
		LeaderElection:                c.LeaderElect,
		LeaderElectionID:              "aim-operator.aim.dev",
		LeaderElectionNamespace:       c.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the controller manager: %w", err)
	}
	if err := indexObjects(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return nil, err
	}
	r, err := NewReconciler(mgr.GetClient(), mgr.GetAPIReader(), mgr.GetEventRecorder("aim-operator"), c.Options, log)
	if err != nil {
		return nil, err
	}
	err = ctrl.NewControllerManagedBy(mgr).
		Named("solution").
		// Status writes and the gateway's last-active annotations do not
		// change the generation; they need no reconcile (the idle check
		// is a timer).
		For(&v1alpha1.Solution{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Owns(&appsv1.ControllerRevision{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: cmp.Or(c.Workers, 8)}).
		Complete(r)
	if err != nil {
		return nil, fmt.Errorf("creating the solution controller: %w", err)
	}
	if healthAddr != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, restCfg *rest.Config, c Config) error {
	mgr, err := NewManager(restCfg, c)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}
