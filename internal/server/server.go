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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/clientconfig"
	"github.com/aimhub/aim/internal/controller"
	"github.com/aimhub/aim/internal/edge"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/inquiry"
	"github.com/aimhub/aim/internal/kube/backend"
	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/scaler"
	"github.com/aimhub/aim/internal/seal"
	"github.com/aimhub/aim/internal/signin"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/usage"
	"github.com/aimhub/aim/internal/web"
)

// Options configure `aim serve`. Zero values take the defaults named.
type Options struct {
	// DataDir holds the SQLite database (unless Database names another),
	// uploads in flight and TLS state. Empty means ./aim-data.
	DataDir string
	// Database, when set, is a PostgreSQL URL (postgres://user:password@
	// host/db) that keeps aim's state instead of the SQLite file in
	// DataDir, so that several API replicas can share it. It may hold a
	// password, and is never logged whole.
	Database string
	// SecretKeyFile is the key that seals solutions' secrets in the store
	// (internal/seal), made when missing. Empty means DataDir/secret.key.
	SecretKeyFile string
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
	// KeepGenerations is how many generations that served keep their
	// images for `aim rollback`. Zero means 3.
	KeepGenerations int
	// ClientConfig is where the first start writes the CLI's server URL
	// and token. Empty means the user's config directory; "-" writes none.
	ClientConfig string
	// DockerPrefix names containers and networks. Empty means "aim".
	DockerPrefix string
	// Egress is "enforced" (empty means so): solutions' networks are
	// confined by iptables rules (docker.Firewall), and aim refuses to
	// start when it cannot make them; or "unrestricted", said explicitly.
	Egress string
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
	// SignIn configures people's sign-in by OpenID Connect; an empty
	// Issuer means none. ApexURL, Guard and Logger are filled in.
	SignIn signin.Config
	// PublicURL is the apex as browsers reach it, e.g. behind a proxy
	// that ends TLS. Empty means from Domain, TLS and the listeners'
	// ports.
	PublicURL string
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

// openStore opens the database: o.Database, or the SQLite file in the
// data directory. The data directory is made either way, for uploads and
// TLS.
func openStore(ctx context.Context, o Options) (*store.Store, error) {
	if err := makeDataDir(o.DataDir, o.Logger); err != nil {
		return nil, err
	}
	if o.Database == "" {
		return store.Open(ctx, filepath.Join(o.DataDir, "aim.db"))
	}
	if !strings.HasPrefix(o.Database, "postgres://") && !strings.HasPrefix(o.Database, "postgresql://") {
		return nil, fmt.Errorf("--database %s: want a postgres:// URL (the SQLite file lives in --data)", databaseName(o))
	}
	st, err := store.Open(ctx, o.Database)
	if err != nil {
		return nil, fmt.Errorf("--database %s: %w", databaseName(o), err)
	}
	return st, nil
}

// openState opens the store and the key that seals the solutions'
// secrets in it: o.SecretKeyFile, or secret.key in the data directory,
// made when missing.
func openState(ctx context.Context, o Options) (*store.Store, *seal.Key, error) {
	st, err := openStore(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	key, err := seal.LoadKey(cmp.Or(o.SecretKeyFile, filepath.Join(o.DataDir, "secret.key")))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, key, nil
}

// databaseName names where the state is for logs and errors: a
// PostgreSQL URL's host and database only, never its user, password or
// parameters.
func databaseName(o Options) string {
	if o.Database == "" {
		return filepath.Join(o.DataDir, "aim.db")
	}
	u, err := url.Parse(o.Database)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return "(a database URL that does not parse)"
	}
	return "postgres://" + u.Host + u.Path
}

// runDocker is `aim serve` on this host's Docker engine: the controller
// and the scaler drive the runtime, the gateway routes to it.
func runDocker(ctx context.Context, o Options) error {
	log := o.Logger
	st, key, err := openState(ctx, o)
	if err != nil {
		return err
	}
	defer st.Close()
	rt, err := newDocker(ctx, o)
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
	portSuffix := portOf(httpPort)
	serverURL := "http://" + apiHost(e.Addr()) + portSuffix
	if err := firstStart(ctx, st, o.ClientConfig, serverURL, log); err != nil {
		return err
	}

	met := metrics.New()
	// Usage counts for providers; written every usage.FlushInterval and
	// once more when aim stops.
	rec := usage.New(st, log)
	met.OnWake = rec.Wake
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
		AccessLog: access, TrustedProxies: o.TrustedProxies, Usage: rec})
	met.Registry.MustRegister(gw.Routes)
	ctl := controller.New(controller.Config{
		Secrets: st, SecretKey: key, Registries: st,
		StartTimeout:    o.StartTimeout,
		WakeTimeout:     o.WakeTimeout,
		IdleTimeout:     o.IdleTimeout,
		Defaults:        spec.DefaultDefaults,
		Limits:          o.Limits,
		LimitCaps:       o.LimitCaps,
		URL:             func(name string) string { return "http://" + name + "." + o.Domain + portSuffix + "/" },
		Logger:          log,
		Metrics:         met,
		ImagePrefix:     "aim.local/" + rt.Prefix(),
		KeepGenerations: o.KeepGenerations,
	}, rt, rt, st, gw.Routes)
	gw.SetWaker(ctl)

	apex, catalog, err := apexMux(o, ctl, st, met, publicURL(o, tlsOn, httpPort, httpsPort), gw)
	if err != nil {
		return err
	}
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
	ctlErr, stopped := runBackground(ctx, o, ctl, gw, st, rec)
	defer func() { cancel(); stopped() }()
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
	log.Info("aim is serving", "url", serverURL, "domain", o.Domain, "data", o.DataDir, "database", databaseName(o), "tls", string(tc.Mode))
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

// runBackground starts what works beside the servers until ctx ends: the
// controller's resync, the scaler, the usage counts' flushes and the
// inquiries' deliveries. stopped waits for the last usage flush.
func runBackground(ctx context.Context, o Options, ctl *controller.Controller, gw *gateway.Gateway, st *store.Store, rec *usage.Recorder) (ctlErr <-chan error, stopped func()) {
	errc := make(chan error, 1)
	go func() { errc <- ctl.Run(ctx) }()
	usageDone := make(chan struct{})
	go func() { _ = rec.Run(ctx); close(usageDone) }()
	go func() { _ = (&inquiry.Deliverer{Store: st, Logger: o.Logger}).Run(ctx) }()
	sc := scaler.New(scaler.Config{MaxIdleWithConnections: o.MaxIdleWithConnections, ScaleDownAfter: o.ScaleDownDelay,
		Every: o.ScaleEvery, Concurrency: spec.DefaultDefaults.Concurrency, Logger: o.Logger}, ctl, gw.Routes)
	go func() { _ = sc.Run(ctx) }()
	return errc, func() { <-usageDone }
}

// apexMux is what the apex host serves: the API, the marketplace's pages
// (the catalog, the solutions' pages, /me and /admin), sign-in under
// /auth/, /healthz and /metrics. With gw (nil when the gateway is the
// cluster's), it is gw's apex, and gw's guard of private solutions
// checks the store, with sign-in configured or not: without it, a
// visitor's personal access token is the way in. Without gw, the same
// guard answers the cluster's gateway under signin.GuardPrefix.
func apexMux(o Options, ctl api.Controller, st *store.Store, met *metrics.Metrics, apexURL string, gw *gateway.Gateway) (*http.ServeMux, *web.Catalog, error) {
	guard, err := signin.NewStoreGuard(st, apexURL)
	if err != nil {
		return nil, nil, err
	}
	if gw != nil {
		gw.SetGuard(guard)
	}
	pages := web.NewPages(o.Logger)
	sc := o.SignIn
	sc.ApexURL, sc.Guard, sc.Logger = apexURL, guard, o.Logger
	si, err := signin.New(sc, st, ctl, pages)
	if err != nil {
		return nil, nil, fmt.Errorf("sign-in: %w", err)
	}
	// One Inquirer for the API and the solution pages' contact form, so
	// that both count against one limit per client and solution.
	inq := &api.Inquirer{Store: st, Providers: st, Limits: inquiry.NewLimiter(5, 50, time.Hour)}
	apex := http.NewServeMux()
	apex.Handle("/auth/", si)
	if gw == nil {
		// The gateway is in a cluster, in front, with no store: its
		// RemoteGuard asks this guard (docs/kubernetes.md).
		apex.Handle(signin.GuardPrefix, signin.GuardHandler(guard))
	}
	apex.Handle("/api/", api.New(api.Config{TempDir: filepath.Join(o.DataDir, "tmp"), Logger: o.Logger, Inquirer: inq}, ctl, st))
	apex.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	apex.Handle("GET /metrics", promhttp.HandlerFor(met.Registry, promhttp.HandlerOpts{}))
	catalog := web.NewCatalog(ctl, si, pages)
	catalog.Store, catalog.Inquirer = st, inq
	apex.Handle("/", catalog)
	web.MountAccount(apex, web.AccountConfig{Controller: ctl, Store: st, Viewers: si, Pages: pages, ApexURL: apexURL, Logger: o.Logger})
	if gw != nil {
		gw.SetApex(apex)
	}
	return apex, catalog, nil
}

// publicURL is the apex as browsers reach it: Options.PublicURL, else
// from the domain, whether TLS is on and the listeners' ports.
func publicURL(o Options, tlsOn bool, httpPort, httpsPort int) string {
	switch {
	case o.PublicURL != "":
		return strings.TrimSuffix(o.PublicURL, "/")
	case tlsOn && httpsPort != 443:
		return fmt.Sprintf("https://%s:%d", o.Domain, httpsPort)
	case tlsOn:
		return "https://" + o.Domain
	case httpPort != 80 && httpPort != 0:
		return fmt.Sprintf("http://%s:%d", o.Domain, httpPort)
	}
	return "http://" + o.Domain
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

// portOf is ":port" in a URL, or "" for HTTP's 80.
func portOf(p int) string {
	if p == 80 {
		return ""
	}
	return fmt.Sprintf(":%d", p)
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

// newDocker connects to the engine, with solutions' egress confined as
// o.Egress says.
func newDocker(ctx context.Context, o Options) (*docker.Docker, error) {
	fw, err := firewall(o.Egress, o.Logger)
	if err != nil {
		return nil, err
	}
	return docker.New(ctx, docker.Options{Logger: o.Logger, Prefix: o.DockerPrefix, Firewall: fw})
}

// firewall sets up the confinement of solutions' egress. A host where aim
// cannot manage iptables is refused rather than left silently open.
func firewall(mode string, log *slog.Logger) (*docker.Firewall, error) {
	switch mode {
	case "", "enforced":
		fw, err := docker.NewFirewall()
		if err != nil {
			return nil, fmt.Errorf("confining solutions' egress (aim needs root and iptables; --egress=unrestricted starts without, "+
				"leaving solutions free to reach this host, the metadata address and private ranges): %w", err)
		}
		return fw, nil
	case "unrestricted":
		log.Warn("solutions' egress is unrestricted (--egress=unrestricted): they can reach this host's services, the metadata address and private ranges")
		return nil, nil
	}
	return nil, fmt.Errorf("--egress %q is not one of enforced, unrestricted", mode)
}

// The Docker controller keeps solutions' volumes for the API.
var _ api.Volumes = (*controller.Controller)(nil)
