// Package kubegateway is `aim gateway`: the gateway of internal/gateway in a
// cluster, routed by internal/kube/router, served by internal/edge with
// certificates from mounted files (cert-manager) or its own ACME, shared
// by every replica through internal/kube/certstore; and its drain on
// SIGTERM.
package kubegateway

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/aimhub/aim/internal/edge"
	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/kube/router"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/signin"
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
	// besides /healthz and /metrics, and which the gateway asks about the
	// credentials of private solutions' visitors (signin.RemoteGuard).
	// Empty means private solutions refuse every request.
	APIUpstream string
	// WakeTimeout bounds a wake and how long a request is held for one.
	// Zero means 2m.
	WakeTimeout time.Duration
	// ActivityInterval is how often activity is written to Solutions.
	// Zero means 5s.
	ActivityInterval time.Duration
	// MaxIdleWithConnections: see router.Config. Zero means 4h.
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
	// TicketKeysSecret, "namespace/name", is the Secret whose TLS
	// session ticket keys every replica shares and rotates
	// (internal/kube/ticketkeys), so that a visitor resumes its session
	// on any replica. Empty means each replica's own keys (Go's, rotated
	// daily). It needs HTTPS, and get and update on that Secret.
	TicketKeysSecret string
	// HTTPS is the TLS listen address. Empty means ":8443".
	HTTPS string
	// Listener, when set, is used instead of listening on HTTP.
	Listener net.Listener
	Logger   *slog.Logger
}

// RunGateway serves the gateway until ctx ends, then drains: /healthz
// fails, keep-alive ends, new connections are still answered for
// DrainDelay, then the listener closes and requests in flight finish.
// The options are assumed valid (the CLI checks its flags' combinations).
func RunGateway(ctx context.Context, o GatewayOptions) error {
	log := cmp.Or(o.Logger, slog.Default())
	kube.UseLogger(log)
	var files *certFiles
	if o.TLSCertFile != "" {
		var err error
		if files, err = newCertFiles(o.TLSCertFile, o.TLSKeyFile); err != nil {
			return err
		}
	}
	rc, ns, err := kube.Connect(o.Kubeconfig, o.Namespace)
	if err != nil {
		return err
	}
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
	wakeTimeout := cmp.Or(o.WakeTimeout, 2*time.Minute)
	gw := gateway.New(gateway.Config{
		Domain: o.Domain, Logger: log, HoldTimeout: wakeTimeout, MaxPending: o.MaxPending,
		Metrics: met, AccessLog: access, TrustedProxies: o.TrustedProxies,
	})
	met.Registry.MustRegister(gw.Routes)
	rt, err := router.New(rc, router.Config{
		Namespace: ns, Routes: gw.Routes, Limits: o.Limits, LimitCaps: o.LimitCaps,
		WakeTimeout: wakeTimeout, ActivityInterval: o.ActivityInterval,
		MaxIdleWithConnections: o.MaxIdleWithConnections, Metrics: met, Logger: log,
	})
	if err != nil {
		return err
	}
	gw.SetWaker(rt)
	if o.APIUpstream != "" {
		// Scheme-relative: the browser keeps the scheme it came by, which
		// is HTTPS behind a load balancer that terminates TLS too.
		gw.SetGuard(&signin.RemoteGuard{URL: o.APIUpstream, SignIn: "//" + gw.Domain() + signin.GuardSignInPath, Logger: log})
	}
	// Without an API there is no one to ask: the gateway refuses every
	// request for a private solution (its Guard is nil).
	var draining atomic.Bool
	apex, err := apexMux(o.APIUpstream, gw.Domain(), rt, met, &draining, log)
	if err != nil {
		return err
	}
	gw.SetApex(apex)

	// The router outlives ctx by the drain, so that wakes and route
	// changes go on while requests finish.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	routerErr := make(chan error, 1)
	synced := make(chan struct{})
	go func() { routerErr <- rt.Run(runCtx, func() { close(synced) }) }()
	select {
	case <-synced:
	case err := <-routerErr:
		return err
	case <-ctx.Done():
		return nil
	}

	e, err := edge.Listen(edge.Config{HTTP: o.HTTP, Listener: o.Listener, HTTPS: o.HTTPS, Server: o.Server, Logger: log},
		files != nil || o.TLS == "acme")
	if err != nil {
		return err
	}
	defer e.Close()
	var cs edge.Certificates
	switch {
	case files != nil:
		cs = &fileCerts{files: files, domain: gw.Domain()}
	case o.TLS == "acme":
		// The ports are the listeners' (the challenges reach them through
		// the Service); certmagic finds them taken and never listens itself.
		httpPort, httpsPort := e.Ports()
		m, err := acmeManager(runCtx, rc, cmp.Or(o.ACMENamespace, ns), o.ACME, gw.Routes, gw.Domain(), httpPort, httpsPort, log)
		if err != nil {
			return err
		}
		cs = &acmeCerts{Manager: m, domain: gw.Domain()}
	}
	if o.TicketKeysSecret != "" && cs != nil {
		if cs, err = sharedTickets(runCtx, rc, o.TicketKeysSecret, cs, log); err != nil {
			return err
		}
	}
	srvErr, err := e.Serve(gw, cs)
	if err != nil {
		return err
	}
	log.Info("aim gateway is serving", "addr", e.Addr().String(), "domain", gw.Domain(), "namespace", ns, "tls", o.TLS, "cert", o.TLSCertFile)

	select {
	case <-ctx.Done():
	case err := <-routerErr:
		return err
	case err := <-srvErr:
		return fmt.Errorf("serving: %w", err)
	}
	return drain(e, o, &draining, log)
}

// drain fails /healthz and ends keep-alive, so that clients open their
// next connection to a replica that stays, goes on answering for
// DrainDelay while the endpoint's removal reaches every kube-proxy and
// load balancer, then shuts down with the requests in flight.
func drain(e *edge.Edge, o GatewayOptions, draining *atomic.Bool, log *slog.Logger) error {
	d := cmp.Or(o.DrainDelay, 5*time.Second)
	log.Info("draining", "delay", d)
	draining.Store(true)
	e.SetKeepAlivesEnabled(false)
	time.Sleep(d)
	shutdown, cancel := context.WithTimeout(context.Background(), cmp.Or(o.ShutdownTimeout, 20*time.Second))
	defer cancel()
	if err := e.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutting down with requests in flight: %w", err)
	}
	log.Info("stopped; every request in flight was answered")
	return nil
}

// apexMux serves the apex host: /healthz (failing while draining or
// before the routes are synced), /metrics, and aim's API and catalog
// from upstream when one is set.
func apexMux(upstream, domain string, rt *router.Router, met *metrics.Metrics, draining *atomic.Bool, log *slog.Logger) (*http.ServeMux, error) {
	apex := http.NewServeMux()
	apex.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		switch {
		case draining.Load():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case !rt.Synced():
			http.Error(w, "routes not synced yet", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	})
	apex.Handle("GET /metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	if upstream == "" {
		apex.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "aim gateway: solutions are served at <name>."+domain, http.StatusNotFound)
		})
		return apex, nil
	}
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("the API upstream %q is not an http(s) URL", upstream)
	}
	// The guard's questions come from the gateway itself, straight to the
	// API: from outside only its sign-in redirect passes.
	apex.HandleFunc(signin.GuardPrefix, http.NotFound)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
		},
		// Deploy progress and followed logs are streamed.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	apex.Handle("GET "+signin.GuardSignInPath, proxy)
	apex.Handle("/", proxy)
	return apex, nil
}
