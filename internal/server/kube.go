package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/aimhub/aim/internal/registry/logincheck"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aimhub/aim/internal/edge"
	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/kube/backend"
	"github.com/aimhub/aim/internal/metrics"
)

// KubeOptions find the cluster of `aim serve --runtime kubernetes`.
type KubeOptions struct {
	// Kubeconfig is a kubeconfig file. Empty means in-cluster, then
	// $KUBECONFIG, then ~/.kube/config.
	Kubeconfig string
	// Namespace holds the Solutions. Empty means the pod's own, or the
	// kubeconfig context's.
	Namespace string
	// Builds, when set, builds components with build: in the cluster
	// (backend.BuildConfig); nil refuses them.
	Builds *backend.BuildConfig
	// InsecureRegistries are the registries (host[:port]) that serve
	// plain HTTP, where a provider's login is tried over HTTP; every
	// other is tried over HTTPS only.
	InsecureRegistries []string
}

// runKubernetes serves the API and the catalog for Solutions in a cluster.
// Requests for solutions are the in-cluster gateway's (`aim gateway`), so
// there is no gateway, scaler or TLS here; API tokens and providers stay
// in the SQLite file in the data directory, or in PostgreSQL with
// --database, which lets several replicas share them.
func runKubernetes(ctx context.Context, o Options) error {
	log := o.Logger
	kube.UseLogger(log)
	st, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer st.Close()

	rc, ns, err := kube.Connect(o.Kube.Kubeconfig, o.Kube.Namespace)
	if err != nil {
		return err
	}
	sols, err := backend.New(rc, backend.Config{
		Namespace:    ns,
		URL:          func(name string) string { return "http://" + name + "." + o.Domain + "/" },
		StartTimeout: o.StartTimeout,
		WakeTimeout:  o.WakeTimeout,
		Logger:       log,
		Builds:       o.Kube.Builds,
		Logins:       &logincheck.Checker{Insecure: o.Kube.InsecureRegistries},
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

	// TLS is the in-cluster gateway's, in front of this server.
	e, err := edge.Listen(edge.Config{HTTP: o.HTTP, Listener: o.Listener, Server: o.Server, Logger: log}, false)
	if err != nil {
		return err
	}
	defer e.Close()
	httpPort, _ := e.Ports()
	serverURL := fmt.Sprintf("http://%s:%d", apiHost(e.Addr()), httpPort)
	if err := firstStart(ctx, st, o.ClientConfig, serverURL, log); err != nil {
		return err
	}
	// The in-cluster gateway, in front, checks private solutions' requests,
	// asking this API's guard (apexMux serves it).
	apex, _, err := apexMux(o, sols, st, metrics.New(), publicURL(o, false, 80, 0), nil)
	if err != nil {
		return err
	}
	if h := sols.BuildContexts(); h != nil {
		// Guarded by each build's one-time token, not by API tokens.
		apex.Handle(backend.ContextPath, h)
	}
	gateErr, closeGate, err := serveBuildGate(o, sols)
	if err != nil {
		return err
	}
	defer closeGate()
	srvErr, err := e.Serve(apex, nil)
	if err != nil {
		return err
	}
	log.Info("aim is serving the API for Kubernetes", "url", serverURL, "namespace", ns, "data", o.DataDir, "database", databaseName(o))
	if o.Ready != nil {
		o.Ready(serverURL)
	}
	select {
	case <-ctx.Done():
	case err := <-watchErr:
		return fmt.Errorf("watching solutions: %w", err)
	case err := <-srvErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	case err := <-gateErr:
		return fmt.Errorf("serving the build registry gate: %w", err)
	}
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	return e.Shutdown(shutdown)
}

// serveBuildGate serves the registry gate builds push through on a
// listener of its own (--build-registry-gate), never on the API's, which
// the gateway serves on the apex: only build pods reach it (the chart's
// NetworkPolicy), and a request without a running build's token gets 401.
func serveBuildGate(o Options, sols *backend.Solutions) (<-chan error, func(), error) {
	h, err := sols.BuildGate()
	if err != nil || h == nil {
		return nil, func() {}, err
	}
	ln, err := net.Listen("tcp", o.Kube.Builds.GateAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("the build registry gate: %w", err)
	}
	// No write timeout: a layer's upload or download takes as long as it
	// takes, within the build's own deadline.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	o.Logger.Info("aim is serving the build registry gate", "addr", ln.Addr().String(), "registry", o.Kube.Builds.Registry)
	return errc, func() { _ = srv.Close() }, nil
}
