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

	"github.com/aimhub/aim/internal/certs"
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
	// TLS is "", "off" or "acme". With acme the gateway obtains
	// certificates on demand from an ACME CA for the apex and the names
	// of its Solutions, kept in Secrets of ACMENamespace that every
	// replica shares (see acmeManager); "" and "off" leave TLS to
	// TLSCertFile.
	TLS string
	// ACME configures --tls=acme: its ACMECA, ACMEEmail, ACMERoots, HSTS
	// and HSTSIncludeSubdomains; RunGateway sets the rest.
	ACME certs.Config
	// ACMENamespace holds the ACME Secrets and Leases. Empty means
	// Namespace.
	ACMENamespace string
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
	var files *certFiles
	switch {
	case o.TLS == "acme" && o.TLSCertFile != "":
		return errors.New("--tls=acme obtains certificates itself: give no --tls-cert-file")
	case o.TLS != "" && o.TLS != "off" && o.TLS != "acme":
		return fmt.Errorf("--tls=%s: use off (with --tls-cert-file for certificate files, e.g. cert-manager's) or acme", o.TLS)
	case o.TLS != "acme" && (o.ACME.ACMECA != "" || o.ACME.ACMEEmail != "" || o.ACME.ACMERoots != nil || o.ACMENamespace != "" || o.ACME.HSTS != 0 || o.ACME.HSTSIncludeSubdomains):
		return errors.New("the ACME settings (--acme-*, --hsts) need --tls=acme")
	case (o.TLSCertFile == "") != (o.TLSKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case o.TLSCertFile != "":
		var err error
		if files, err = newCertFiles(o.TLSCertFile, o.TLSKeyFile); err != nil {
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
	defer func() { // after the server stopped: its last lines are written
		if err := closeAccess(); err != nil {
			log.Error("closing the access log", "err", err)
		}
	}()
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
	var tlsLn net.Listener
	if files != nil || o.TLS == "acme" {
		addr := cmp.Or(o.HTTPS, ":8443")
		if tlsLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listening on %s: %w", addr, err)
		}
	}
	var tm *certs.Manager
	if o.TLS == "acme" {
		// The ports are the listeners' (the challenges reach them through
		// the Service); certmagic finds them taken and never listens itself.
		tm, err = acmeManager(runCtx, rc, cmp.Or(o.ACMENamespace, ns), o.ACME, gw.Routes, gw.Domain(),
			ln.Addr().(*net.TCPAddr).Port, tlsLn.Addr().(*net.TCPAddr).Port, log)
		if err != nil {
			return err
		}
	}
	limits := o.Server
	limits.Logger = log
	var tlsConfig *tls.Config
	var secure http.Handler = gw
	switch {
	case files != nil:
		tlsConfig = &tls.Config{GetCertificate: files.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	case tm != nil:
		tlsConfig, secure = tm.TLSConfig(), tm.HSTS(gw)
	}
	var plain http.Handler = gw
	if tlsConfig != nil {
		plain = redirectToHTTPS(gw.Domain(), gw)
	}
	if tm != nil {
		plain = withChallenges(tm, plain)
	}
	srv := gateway.NewServer(plain, limits)
	srvErr := make(chan error, 2)
	var tlsSrv *gateway.Server
	if tlsConfig != nil {
		tlsSrv = gateway.NewServer(secure, limits)
		go func() { srvErr <- tlsSrv.ServeTLS(tlsLn, tlsConfig) }()
		log.Info("serving HTTPS", "addr", tlsLn.Addr().String(), "cert", o.TLSCertFile, "tls", o.TLS)
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
