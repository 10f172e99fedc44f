package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/web"
)

// KubeOptions find the cluster of `aim serve --runtime kubernetes`.
type KubeOptions struct {
	// Kubeconfig is a kubeconfig file. Empty means in-cluster, then
	// $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string
	// Namespace holds the Solutions. Empty means the pod's own, or the
	// kubeconfig context's.
	Namespace string
}

// runKubernetes serves the API and the catalog for Solutions in a cluster.
// Requests for solutions are the in-cluster gateway's (`aim gateway`), so
// there is no gateway, scaler or TLS here; API tokens stay in the SQLite
// file in the data directory.
func runKubernetes(ctx context.Context, o Options) error {
	log := o.Logger
	kube.UseLogger(log)
	if err := os.MkdirAll(filepath.Join(o.DataDir, "tmp"), 0o700); err != nil {
		return fmt.Errorf("creating the data directory: %w", err)
	}
	st, err := store.Open(ctx, filepath.Join(o.DataDir, "aim.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	rc, ns, err := kube.Connect(o.Kube.Kubeconfig, o.Kube.Namespace)
	if err != nil {
		return err
	}
	sols, err := kube.NewSolutions(rc, kube.SolutionsConfig{
		Namespace:    ns,
		URL:          func(name string) string { return "http://" + name + "." + o.Domain + "/" },
		StartTimeout: o.StartTimeout,
		WakeTimeout:  o.WakeTimeout,
		Logger:       log,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	synced := make(chan struct{})
	watchErr := make(chan error, 1)
	go func() { watchErr <- sols.Run(ctx, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-watchErr:
		return err
	}

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.HTTP); err != nil {
			return fmt.Errorf("listening on %s: %w", o.HTTP, err)
		}
	}
	serverURL := fmt.Sprintf("http://%s:%d", apiHost(ln.Addr()), ln.Addr().(*net.TCPAddr).Port)
	if err := firstStart(ctx, st, o.ClientConfig, serverURL, log); err != nil {
		return err
	}

	met := metrics.New()
	apex := http.NewServeMux()
	apex.Handle("/api/", api.New(api.Config{TempDir: filepath.Join(o.DataDir, "tmp"), Logger: log}, sols, st))
	apex.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	apex.Handle("GET /metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	apex.Handle("/", web.NewCatalog(sols, log))
	limits := o.Server
	limits.Logger = log
	srv := gateway.NewServer(apex, limits)
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("aim is serving the API for Kubernetes", "url", serverURL, "namespace", ns, "data", o.DataDir)
	if o.Ready != nil {
		o.Ready(serverURL)
	}
	select {
	case <-ctx.Done():
	case err := <-watchErr:
		_ = srv.Close()
		return fmt.Errorf("watching solutions: %w", err)
	case err := <-srvErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	}
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	return srv.Shutdown(shutdown)
}
