package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/kube/kubegateway"
)

// gatewayCmd runs aim's gateway inside a Kubernetes cluster.
func gatewayCmd(g *globals) *cobra.Command {
	var o kubegateway.GatewayOptions
	var logJSON, debug bool
	var acmeRoot string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the gateway in a Kubernetes cluster: route <name>.<domain> to Solutions, wake them, report their activity",
		Long: `Run aim's gateway in a Kubernetes cluster, as a Deployment of two or more
replicas behind one Service. It watches the Solutions (aim.dev/v1alpha1) of
its namespace and their EndpointSlices and routes <name>.<domain> to the
ready pods of their public components. A request for a sleeping solution
scales its Deployments up (one wake per solution and replica) and is held
until it can serve. Every --activity-interval it writes the last request it
saw for each solution to the Solution's aim.dev/last-active annotation,
from which the operator judges idleness.

With --tls=acme it gets a certificate from an ACME CA (--acme-ca, Let's
Encrypt by default) for the domain and each solution's name on the first
handshake that names it, and for no other name; HTTP-01 and TLS-ALPN-01 are
answered by whichever replica the CA reaches. Certificates, keys and the
ACME account are kept in Secrets of --acme-namespace, shared by the
replicas, with Leases there so that one replica at a time asks for a name.

On SIGTERM it fails /healthz, keeps answering for --drain-delay while the
cluster stops sending it connections, then finishes the requests in flight.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ho := &slog.HandlerOptions{Level: slog.LevelInfo}
			if debug {
				ho.Level = slog.LevelDebug
			}
			var h slog.Handler = slog.NewTextHandler(g.errOut, ho)
			if logJSON {
				h = slog.NewJSONHandler(g.errOut, ho)
			}
			o.Logger = slog.New(h)
			if acmeRoot != "" {
				roots, err := readRoots(acmeRoot)
				if err != nil {
					return fmt.Errorf("--acme-ca-root: %w", err)
				}
				o.ACME.ACMERoots = roots
			}
			if err := validateGateway(o); err != nil {
				return err
			}
			return kubegateway.RunGateway(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.Namespace, "namespace", "", "namespace of the Solutions to serve (default: the pod's own)")
	f.StringVar(&o.HTTP, "http", ":8080", "address the gateway listens on")
	f.StringVar(&o.Domain, "domain", "localhost", "solutions are served at <name>.<domain>")
	f.StringVar(&o.APIUpstream, "api-upstream", "", "URL of aim's API and catalog (aim serve --runtime kubernetes), served on the apex host and asked who private solutions' visitors are (default: none, and private solutions refuse everyone)")
	f.DurationVar(&o.WakeTimeout, "wake-timeout", 2*time.Minute, "how long a request waits for a sleeping solution to wake")
	f.DurationVar(&o.ActivityInterval, "activity-interval", 5*time.Second, "how often the last activity is written to the Solutions")
	f.DurationVar(&o.MaxIdleWithConnections, "max-idle-with-connections", 4*time.Hour, "how long open WebSockets and event streams alone keep a solution awake")
	f.Int64Var(&o.MaxPending, "max-pending", 1000, "requests held per solution while it wakes; more get 503 with Retry-After")
	f.Float64Var(&o.Limits.RPS, "rps", 100, "requests per second per client IP a solution takes unless its spec.limits.rps says otherwise (0: unlimited)")
	f.IntVar(&o.Limits.Burst, "burst", 200, "requests a client may send at once before --rps applies")
	byteSizeVar(f, &o.Limits.Body, "max-body", 10<<20, "request body size a solution takes unless its spec.limits.body says otherwise (0: unlimited)")
	f.Float64Var(&o.LimitCaps.RPS, "cap-rps", 0, "the most requests per second per client IP any solution may ask for (0: no cap)")
	f.IntVar(&o.LimitCaps.Burst, "cap-burst", 0, "the largest burst any solution may ask for (0: no cap)")
	byteSizeVar(f, &o.LimitCaps.Body, "cap-body", 0, "the largest request body any solution may ask for (0: no cap)")
	serverFlags(f, &o.Server)
	f.StringVar(&o.AccessLog, "access-log", "", "write a JSON line per request to a solution: stdout or stderr (default none)")
	f.Var(&proxiesFlag{&o.TrustedProxies}, "trusted-proxies", "comma-separated addresses or CIDRs whose X-Forwarded-For names the client (for rate limits and access logs)")
	f.DurationVar(&o.DrainDelay, "drain-delay", 5*time.Second, "after SIGTERM, how long to keep taking connections while the cluster stops sending them")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "after the drain, how long requests in flight may take to finish")
	f.StringVar(&o.TLSCertFile, "tls-cert-file", "", "serve HTTPS with this certificate (PEM; e.g. cert-manager's wildcard for the domain), re-read when it changes; plain HTTP then redirects the domain's requests")
	f.StringVar(&o.TLSKeyFile, "tls-key-file", "", "the key of --tls-cert-file (PEM)")
	f.StringVar(&o.HTTPS, "https", ":8443", "address HTTPS listens on, with --tls-cert-file or --tls=acme")
	f.StringVar(&o.TLS, "tls", "off", "off (HTTPS only with --tls-cert-file), or acme: certificates from --acme-ca on demand for the domain and existing solutions, shared by the replicas in Secrets of --acme-namespace")
	f.StringVar(&o.ACME.ACMECA, "acme-ca", "", "with --tls=acme: ACME directory URL (default Let's Encrypt; using it means agreeing to its terms)")
	f.StringVar(&o.ACME.ACMEEmail, "acme-email", "", "with --tls=acme: contact address given to the ACME CA")
	f.StringVar(&acmeRoot, "acme-ca-root", "", "with --tls=acme: PEM file of the CA that signs the ACME server's own HTTPS (for a private ACME server)")
	f.StringVar(&o.ACMENamespace, "acme-namespace", "", "with --tls=acme: namespace of the Secrets (certificates, ACME account) and Leases (locks) the replicas share (default: --namespace)")
	f.DurationVar(&o.ACME.HSTS, "hsts", 0, "with --tls=acme: send Strict-Transport-Security with this max-age over HTTPS (0: none)")
	f.BoolVar(&o.ACME.HSTSIncludeSubdomains, "hsts-subdomains", false, "with --tls=acme: add includeSubDomains to Strict-Transport-Security")
	f.StringVar(&o.TicketKeysSecret, "ticket-keys-secret", "", "with HTTPS: namespace/name of the Secret whose TLS session ticket keys the replicas share and rotate, so a visitor resumes its session on any replica (default: each replica's own keys)")
	f.BoolVar(&logJSON, "log-json", false, "log as JSON")
	f.BoolVar(&debug, "debug", false, "log the steps of each wake")
	return cmd
}

// validateGateway refuses combinations of aim gateway's flags that mean
// nothing together.
func validateGateway(o kubegateway.GatewayOptions) error {
	switch {
	case o.TLS == "acme" && o.TLSCertFile != "":
		return errors.New("--tls=acme obtains certificates itself: give no --tls-cert-file")
	case o.TLS != "" && o.TLS != "off" && o.TLS != "acme":
		return fmt.Errorf("--tls=%s: use off (with --tls-cert-file for certificate files, e.g. cert-manager's) or acme", o.TLS)
	case o.TLS != "acme" && (o.ACME.ACMECA != "" || o.ACME.ACMEEmail != "" || o.ACME.ACMERoots != nil || o.ACMENamespace != "" || o.ACME.HSTS != 0 || o.ACME.HSTSIncludeSubdomains):
		return errors.New("the ACME settings (--acme-*, --hsts) need --tls=acme")
	case o.TicketKeysSecret != "" && o.TLSCertFile == "" && o.TLS != "acme":
		return errors.New("--ticket-keys-secret needs HTTPS (--tls-cert-file or --tls=acme)")
	case o.TicketKeysSecret != "" && !validSecretRef(o.TicketKeysSecret):
		return fmt.Errorf("--ticket-keys-secret %q: want namespace/name", o.TicketKeysSecret)
	case (o.TLSCertFile == "") != (o.TLSKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case o.APIUpstream != "":
		if u, err := url.Parse(o.APIUpstream); err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("--api-upstream %q is not an http(s) URL", o.APIUpstream)
		}
	}
	return nil
}

func validSecretRef(s string) bool {
	ns, name, ok := strings.Cut(s, "/")
	return ok && ns != "" && name != "" && !strings.Contains(name, "/")
}

// serverFlags registers the listeners' timeouts and header limit, the same
// for aim serve and aim gateway.
func serverFlags(f *pflag.FlagSet, c *gateway.ServerConfig) {
	f.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", 10*time.Second, "how long a client may take to send its request headers")
	f.DurationVar(&c.ReadTimeout, "read-timeout", 5*time.Minute, "how long a client may take to send a whole request (WebSockets and event streams exempt)")
	f.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Minute, "how long an answer may take, the solution's work included (WebSockets and event streams exempt)")
	f.DurationVar(&c.IdleTimeout, "conn-idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	f.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 32<<10, "request header size; larger requests get 431")
}

// readRoots reads a PEM file of CA certificates.
func readRoots(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, errors.New(file + ": no PEM certificate in it")
	}
	return roots, nil
}
