// Package server assembles `aim serve`: the store, the runtime, the
// controller, the gateway, the API and the pages, on one HTTP listener.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/clientconfig"
	"github.com/aimhub/aim/internal/controller"
	"github.com/aimhub/aim/internal/edge"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/kube/backend"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/scaler"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/web"
)

// Options configure `aim serve`. Zero values take the defaults named.
type Options struct {
	// DataDir holds the database. Empty means ./aim-data.
	DataDir string
	// HTTP is the gateway's listen address. Empty means ":8080".
	HTTP string
	// Domain is the apex; solutions are at <name>.<Domain>. Empty means
	// "localhost".
	Domain string
	// StartTimeout bounds how long a component may take to answer. Zero
	// means 60s.
	StartTimeout time.Duration
	// WakeTimeout bounds one wake. Zero means 2m.
	WakeTimeout time.Duration
	// IdleTimeout puts a solution to sleep after this long without
	// requests, unless its manifest says otherwise. Zero means 30m.
	IdleTimeout time.Duration
	// MaxIdleWithConnections caps how long open WebSockets and event
	// streams alone keep a solution awake. Zero means 4h.
	MaxIdleWithConnections time.Duration
	// ScaleDownDelay is how long the load on a solution with
	// scaling.max above 1 must stay low before a replica is removed. Zero
	// means 1m.
	ScaleDownDelay time.Duration
	// ScaleEvery is how often the scaler judges idleness and load. Zero
	// means 1s.
	ScaleEvery time.Duration
	// Limits fill a manifest's unset limits; LimitCaps bound what a
	// manifest may ask for. Zero fields mean none.
	Limits, LimitCaps spec.Limits
	// Server holds the listeners' timeouts and header limit.
	Server gateway.ServerConfig
	// AccessLog is where access logs go: "stdout", "stderr", a file path,
	// or "" for none.
	AccessLog string
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies gateway.Proxies
	// MaxPending bounds the requests held per solution while it wakes.
	// Zero means 1000.
	MaxPending int64
	// ClientConfig is where the first start writes the CLI's server URL
	// and token. Empty means the user's config directory; "-" writes none.
	ClientConfig string
	// DockerPrefix names containers and networks. Empty means "aim".
	DockerPrefix string
	// TLS configures HTTPS; its Mode "" or "off" serves plain HTTP only.
	// Dir and Domain are filled in from DataDir and Domain.
	TLS certs.Config
	// HTTPS is the TLS listen address when TLS is on. Empty means ":8443".
	HTTPS string
	// DebugAddr, when set, serves Go's pprof profiles there; keep it on
	// loopback.
	DebugAddr string
	// Runtime runs the solutions: "docker" (or empty) on this host's
	// engine, or "kubernetes" as Solutions in a cluster (see Kube).
	Runtime string
	// Kube finds the cluster when Runtime is "kubernetes".
	Kube KubeOptions
	// Listener, when set, is used instead of listening on HTTP.
	Listener net.Listener
	Logger   *slog.Logger
	// Ready, when set, is called once the server accepts requests.
	Ready func(url string)
}

// Run serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	o.DataDir = cmp.Or(o.DataDir, "aim-data")
	o.HTTP = cmp.Or(o.HTTP, ":8080")
	o.Domain = cmp.Or(o.Domain, "localhost")
	o.Logger = cmp.Or(o.Logger, slog.Default())
	switch o.Runtime {
	case "", "docker":
		return runDocker(ctx, o)
	case "kubernetes":
		return runKubernetes(ctx, o)
	default:
		return fmt.Errorf("runtime %q: use docker or kubernetes", o.Runtime)
	}
}

// openStore opens the database in the data directory, creating both.
func openStore(ctx context.Context, o Options) (*store.Store, error) {
	if err := os.MkdirAll(filepath.Join(o.DataDir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	return store.Open(ctx, filepath.Join(o.DataDir, "aim.db"))
}

// runDocker is `aim serve` on this host's Docker engine: the controller
// and the scaler drive the runtime, the gateway routes to it.
func runDocker(ctx context.Context, o Options) error {
	log := o.Logger
	st, err := openStore(ctx, o)
	if err != nil {
		return err
	}
	defer st.Close()
	rt, err := docker.New(ctx, docker.Options{Logger: log, Prefix: o.DockerPrefix})
	if err != nil {
		return err
	}
	defer rt.Close()

	tlsOn := o.TLS.Mode != "" && o.TLS.Mode != certs.ModeOff
	e, err := edge.Listen(edge.Config{HTTP: o.HTTP, Listener: o.Listener, HTTPS: o.HTTPS, LoopbackPlain: true, Server: o.Server, Logger: log}, tlsOn)
	if err != nil {
		return err
	}
	defer e.Close()
	httpPort, httpsPort := e.Ports()
	portSuffix := ""
	if httpPort != 80 {
		portSuffix = fmt.Sprintf(":%d", httpPort)
	}
	serverURL := "http://" + apiHost(e.Addr()) + portSuffix
	if err := firstStart(ctx, st, o.ClientConfig, serverURL, log); err != nil {
		return err
	}

	met := metrics.New()
	access, closeAccess, err := gateway.OpenAccessLog(o.AccessLog, true)
	if err != nil {
		return err
	}
	defer func() { // after the servers stopped: their last lines are written
		if err := closeAccess(); err != nil {
			log.Error("closing the access log", "err", err)
		}
	}()
	gw := gateway.New(gateway.Config{Domain: o.Domain, Logger: log, HoldTimeout: o.WakeTimeout, MaxPending: o.MaxPending, Metrics: met,
		AccessLog: access, TrustedProxies: o.TrustedProxies})
	met.Registry.MustRegister(gw.Routes)
	ctl := controller.New(controller.Config{
		StartTimeout: o.StartTimeout,
		WakeTimeout:  o.WakeTimeout,
		IdleTimeout:  o.IdleTimeout,
		Defaults:     spec.DefaultDefaults,
		Limits:       o.Limits,
		LimitCaps:    o.LimitCaps,
		URL:          func(name string) string { return "http://" + name + "." + o.Domain + portSuffix + "/" },
		Logger:       log,
		Metrics:      met,
		ImagePrefix:  "aim.local/" + rt.Prefix(),
	}, rt, rt, st, gw.Routes)
	gw.SetWaker(ctl)

	apex, catalog := apexMux(o, ctl, st, met)
	gw.SetApex(apex)
	tc := o.TLS
	tc.Dir, tc.Domain, tc.Logger = o.DataDir, o.Domain, log
	tc.Allow = gw.Routes.AllowCertificate
	tc.HTTPPort, tc.HTTPSPort = cmp.Or(tc.HTTPPort, httpPort), cmp.Or(tc.HTTPSPort, httpsPort)
	tm, err := certs.New(ctx, tc)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	if tm.CACertPEM() != nil {
		apex.Handle("GET /ca.crt", tm.CAHandler())
		catalog.CAURL = "/ca.crt"
	}

	if err := ctl.Adopt(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- ctl.Run(ctx) }()
	sc := scaler.New(scaler.Config{MaxIdleWithConnections: o.MaxIdleWithConnections, ScaleDownAfter: o.ScaleDownDelay, Every: o.ScaleEvery, Concurrency: spec.DefaultDefaults.Concurrency, Logger: log}, ctl, gw.Routes)
	go func() { _ = sc.Run(ctx) }()
	if o.DebugAddr != "" {
		stop, err := serveDebug(o.DebugAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	var certSource edge.Certificates
	if tlsOn {
		certSource = tm
	}
	srvErr, err := e.Serve(gw, certSource)
	if err != nil {
		return err
	}
	log.Info("aim is serving", "url", serverURL, "domain", o.Domain, "data", o.DataDir, "tls", string(tc.Mode))
	if o.Ready != nil {
		o.Ready(serverURL)
	}

	select {
	case <-ctx.Done():
	case err := <-ctlErr:
		if err != nil {
			return fmt.Errorf("controller: %w", err)
		}
	case err := <-srvErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving: %w", err)
		}
	}
	shutdown, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	// Solutions keep running: the next aim adopts them.
	return e.Shutdown(shutdown)
}

// apexMux is what the apex host serves: the API, the catalog, /healthz
// and /metrics.
func apexMux(o Options, ctl api.Controller, st api.Tokens, met *metrics.Metrics) (*http.ServeMux, *web.Catalog) {
	apex := http.NewServeMux()
	apex.Handle("/api/", api.New(api.Config{TempDir: filepath.Join(o.DataDir, "tmp"), Logger: o.Logger}, ctl, st))
	apex.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	apex.Handle("GET /metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	catalog := web.NewCatalog(ctl, o.Logger)
	apex.Handle("/", catalog)
	return apex, catalog
}

// serveDebug serves Go's pprof profiles on addr until stop.
func serveDebug(addr string) (stop func(), err error) {
	dbg := http.NewServeMux()
	dbg.HandleFunc("/debug/pprof/", pprof.Index)
	dbg.HandleFunc("/debug/pprof/profile", pprof.Profile)
	dbg.HandleFunc("/debug/pprof/trace", pprof.Trace)
	dbg.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	go func() { _ = http.Serve(ln, dbg) }()
	return func() { ln.Close() }, nil
}

// apiHost is the host the CLI uses to reach this server.
func apiHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() || ta.IP == nil {
		return "127.0.0.1"
	}
	return ta.IP.String()
}

// firstStart creates the admin token on the first start and writes the
// client configuration, unless one exists, so that the CLI on this
// machine works with no flags.
func firstStart(ctx context.Context, st *store.Store, cfgPath, serverURL string, log *slog.Logger) error {
	has, err := st.HasTokens(ctx)
	if err != nil || has {
		return err
	}
	tok, _, err := st.CreateToken(ctx, store.Token{Name: "admin", Role: store.RoleAdmin})
	if err != nil {
		return err
	}
	if cfgPath == "-" {
		log.Info("created the admin token; no client configuration written", "token", tok)
		return nil
	}
	if cfgPath == "" {
		if cfgPath, err = clientconfig.DefaultPath(); err != nil {
			return err
		}
	}
	if _, err := os.Stat(cfgPath); err == nil {
		log.Warn("a client configuration exists already and was left alone; the new admin token is printed here once",
			"path", cfgPath, "token", tok)
		return nil
	}
	if err := clientconfig.Save(cfgPath, clientconfig.Config{Server: serverURL, Token: tok}); err != nil {
		return err
	}
	log.Info("created the admin token and wrote the client configuration", "path", cfgPath)
	return nil
}

// The two runtimes meet at the API: the Docker controller here, the
// Kubernetes backend in kube.go.
var (
	_ api.Controller = (*controller.Controller)(nil)
	_ api.Controller = (*backend.Solutions)(nil)
)
