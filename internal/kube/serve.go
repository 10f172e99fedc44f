package kube

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/spec"
)

// GatewayOptions configure `aim gateway`. Zero values take the defaults
// named.
type GatewayOptions struct {
	// Kubeconfig and Namespace find the cluster and the Solutions; empty
	// means in-cluster and the pod's own namespace (see Connect).
	Kubeconfig, Namespace string
	// HTTP is the listen address. Empty means ":8080".
	HTTP string
	// Domain is the apex; solutions are at <name>.<Domain>. Empty means
	// "localhost".
	Domain string
	// APIUpstream, when set, is the URL of aim's API and catalog (`aim
	// serve --runtime kubernetes`), which the apex host then serves
	// besides /healthz and /metrics.
	APIUpstream string
	// WakeTimeout bounds a wake and how long a request is held for one.
	// Zero means 2m.
	WakeTimeout time.Duration
	// ActivityInterval is how often activity is written to Solutions.
	// Zero means 5s.
	ActivityInterval time.Duration
	// MaxIdleWithConnections: see RouterConfig. Zero means 4h.
	MaxIdleWithConnections time.Duration
	// MaxPending bounds the requests held per solution. Zero means 1000.
	MaxPending int64
	// Limits fill a Solution's unset limits; LimitCaps bound them.
	Limits, LimitCaps spec.Limits
	// Server holds the listeners' timeouts and header limit.
	Server gateway.ServerConfig
	// AccessLog is "stdout", "stderr" or "" (none).
	AccessLog string
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies gateway.Proxies
	// DrainDelay is how long, after SIGTERM, the gateway goes on taking
	// new connections (failing /healthz) while the cluster stops sending
	// it any: the endpoint's removal takes a moment to reach every
	// kube-proxy and load balancer. Zero means 5s.
	DrainDelay time.Duration
	// ShutdownTimeout bounds how long requests in flight may take to
	// finish after the drain. Zero means 20s; keep DrainDelay plus this
	// below the pod's terminationGracePeriodSeconds.
	ShutdownTimeout time.Duration
	// TLS is "", "off" or "acme"; acme is not supported by the gateway
	// in a cluster yet (certificates would have to be shared by the
	// replicas, in Secrets): use certificate files.
	TLS string
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS on HTTPS with
	// that certificate (e.g. cert-manager's wildcard, mounted from its
	// Secret; renewals are picked up), and plain HTTP then redirects the
	// domain's requests to HTTPS.
	TLSCertFile, TLSKeyFile string
	// HTTPS is the TLS listen address. Empty means ":8443".
	HTTPS string
	// Listener, when set, is used instead of listening on HTTP.
	Listener net.Listener
	Logger   *slog.Logger
}

// RunGateway serves the gateway until ctx ends, then drains: /healthz
// fails, keep-alive ends, new connections are still answered for
// DrainDelay, then the listener closes and requests in flight finish.
func RunGateway(ctx context.Context, o GatewayOptions) error {
	log := cmp.Or(o.Logger, slog.Default())
	UseLogger(log)
	var certs *certFiles
	switch {
	case o.TLS != "" && o.TLS != "off":
		return fmt.Errorf("--tls=%s: the gateway in a cluster takes certificate files only (--tls-cert-file, --tls-key-file; e.g. the chart's tls.mode cert-manager); its own ACME is not supported yet", o.TLS)
	case (o.TLSCertFile == "") != (o.TLSKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case o.TLSCertFile != "":
		var err error
		if certs, err = newCertFiles(o.TLSCertFile, o.TLSKeyFile); err != nil {
			return err
		}
	}
	rc, ns, err := Connect(o.Kubeconfig, o.Namespace)
	if err != nil {
		return err
	}
	wakeTimeout := cmp.Or(o.WakeTimeout, 2*time.Minute)
	// No files: a pod's output is collected anyway, and files would fill its disk.
	access, closeAccess, err := gateway.OpenAccessLog(o.AccessLog, false)
	if err != nil {
		return err
	}
	defer closeAccess() // after the server stopped: its last lines are written
	met := metrics.New()
	gw := gateway.New(gateway.Config{
		Domain: o.Domain, Logger: log, HoldTimeout: wakeTimeout, MaxPending: o.MaxPending,
		Metrics: met, AccessLog: access, TrustedProxies: o.TrustedProxies,
	})
	met.Registry.MustRegister(gw.Routes)
	router, err := NewRouter(rc, RouterConfig{
		Namespace: ns, Routes: gw.Routes, Limits: o.Limits, LimitCaps: o.LimitCaps,
		WakeTimeout: wakeTimeout, ActivityInterval: o.ActivityInterval,
		MaxIdleWithConnections: o.MaxIdleWithConnections, Metrics: met, Logger: log,
	})
	if err != nil {
		return err
	}
	gw.SetWaker(router)

	var draining atomic.Bool
	apex := http.NewServeMux()
	apex.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch {
		case draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !router.Synced():
			http.Error(w, "routes not synced yet", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	})
	apex.Handle("GET /metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	if o.APIUpstream != "" {
		u, err := url.Parse(o.APIUpstream)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--api-upstream %q is not an http(s) URL", o.APIUpstream)
		}
		apex.Handle("/", &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(u)
				pr.SetXForwarded()
			},
			// Deploy progress and followed logs are streamed.
			FlushInterval: -1,
			ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		})
	} else {
		apex.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "aim gateway: solutions are served at <name>."+gw.Domain(), http.StatusNotFound)
		})
	}
	gw.SetApex(apex)

	// The router outlives ctx by the drain, so that wakes and route
	// changes go on while requests finish.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	routerErr := make(chan error, 1)
	synced := make(chan struct{})
	go func() { routerErr <- router.Run(runCtx, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-routerErr:
		return err
	case <-ctx.Done():
		return nil
	}

	ln := o.Listener
	if ln == nil {
		addr := cmp.Or(o.HTTP, ":8080")
		if ln, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	limits := o.Server
	limits.Logger = log
	var plain http.Handler = gw
	if certs != nil {
		plain = redirectToHTTPS(gw.Domain(), gw)
	}
	srv := gateway.NewServer(plain, limits)
	srvErr := make(chan error, 2)
	var tlsSrv *gateway.Server
	if certs != nil {
		addr := cmp.Or(o.HTTPS, ":8443")
		tlsLn, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
		tlsSrv = gateway.NewServer(gw, limits)
		go func() {
			srvErr <- tlsSrv.ServeTLS(tlsLn, &tls.Config{GetCertificate: certs.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
		}()
		log.Info("serving HTTPS", "addr", tlsLn.Addr().String(), "cert", o.TLSCertFile)
	}
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("aim gateway is serving", "addr", ln.Addr().String(), "domain", gw.Domain(), "namespace", ns)

	select {
	case <-ctx.Done():
	case err := <-routerErr:
		_ = srv.Close()
		return err
	case err := <-srvErr:
		return fmt.Errorf("serving: %w", err)
	}
	drain := cmp.Or(o.DrainDelay, 5*time.Second)
	log.Info("draining", "delay", drain)
	draining.Store(true)
	// Answers say "Connection: close" from now on, so that clients open
	// their next connection to a replica that stays.
	srv.SetKeepAlivesEnabled(false)
	if tlsSrv != nil {
		tlsSrv.SetKeepAlivesEnabled(false)
	}
	time.Sleep(drain)
	shutdown, cancel := context.WithTimeout(context.Background(), cmp.Or(o.ShutdownTimeout, 20*time.Second))
	defer cancel()
	tlsDone := make(chan error, 1)
	if tlsSrv != nil {
		go func() { tlsDone <- tlsSrv.Shutdown(shutdown) }()
	} else {
		tlsDone <- nil
	}
	err = errors.Join(srv.Shutdown(shutdown), <-tlsDone)
	if err != nil {
		return fmt.Errorf("shutting down with requests in flight: %w", err)
	}
	log.Info("stopped; every request in flight was answered")
	return nil
}
