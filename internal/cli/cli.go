// Package cli is the aim command line. Every command but serve talks to
// an aim server through its REST API only.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aimhub/aim/internal/solution"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/client"
	"github.com/aimhub/aim/internal/clientconfig"
	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/server"
	"github.com/aimhub/aim/internal/spec"
)

// Version is set at build time.
var Version = "dev"

type globals struct {
	server, token string
	out, errOut   io.Writer
}

// New returns the root command.
func New(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{out: stdout, errOut: stderr}
	root := &cobra.Command{
		Use:           "aim",
		Short:         "aim hosts AI solutions: try them in a browser, or serve your own",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.server, "server", "", "aim server URL (default $AIM_SERVER, then the client configuration)")
	root.PersistentFlags().StringVar(&g.token, "token", "", "API token (default $AIM_TOKEN, then the client configuration)")
	root.AddCommand(serveCmd(g), deployCmd(g), lsCmd(g), statusCmd(g), logsCmd(g), rmCmd(g), actionCmd(g, "wake", "Wake a sleeping solution"), actionCmd(g, "sleep", "Stop a solution's containers until its next request"),
		checkCmd(g), initCmd(g), providerCmd(g), tokenCmd(g), whoamiCmd(g),
		historyCmd(g), rollbackCmd(g), usageCmd(g), inquiriesCmd(g), secretCmd(g), registryCmd(g))
	root.AddCommand(operatorCmd(g))
	root.AddCommand(volumeCmd(g))
	root.AddCommand(gatewayCmd(g))
	return root
}

// client resolves the server and token: flags, then the environment, then
// the client configuration that `aim serve` wrote.
func (g *globals) client() (*client.Client, error) {
	srv, tok := g.server, g.token
	if srv == "" {
		srv = os.Getenv("AIM_SERVER")
	}
	if tok == "" {
		tok = os.Getenv("AIM_TOKEN")
	}
	if srv == "" || tok == "" {
		path, err := clientconfig.DefaultPath()
		if err != nil {
			return nil, err
		}
		cfg, err := clientconfig.Load(path)
		if err != nil {
			return nil, err
		}
		if srv == "" {
			srv = cfg.Server
		}
		if tok == "" {
			tok = cfg.Token
		}
	}
	if srv == "" {
		srv = "http://127.0.0.1:8080"
	}
	return client.New(srv, tok), nil
}

func serveCmd(g *globals) *cobra.Command {
	var o server.Options
	var logJSON bool
	var acmeRoot string
	var acmeDNS acmeDNSFlags
	var oidc oidcFlags
	var builds kubeBuilds
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the platform: gateway, API and catalog, with solutions as Docker containers",
		Long: `Run the platform: gateway, API and catalog, with solutions as Docker containers.

HTTPS (--tls): internal issues certificates from a CA aim keeps in --data; acme
gets them from an ACME CA (--acme-ca, Let's Encrypt by default), either per
solution on demand (HTTP-01 or TLS-ALPN-01, answered on --http and --https), or
with --acme-dns rfc2136 as one certificate for the domain and *.domain through
DNS-01: aim sets the TXT records by RFC 2136 dynamic updates to
--acme-dns-server, signed with the TSIG key --acme-dns-tsig-key, whose secret
it reads from $` + tsigSecretEnv + ` or --acme-dns-tsig-secret-file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(g.errOut, nil)
			if logJSON {
				h = slog.NewJSONHandler(g.errOut, nil)
			}
			o.Logger = slog.New(h)
			if acmeRoot != "" {
				roots, err := readRoots(acmeRoot)
				if err != nil {
					return fmt.Errorf("--acme-ca-root: %w", err)
				}
				o.TLS.ACMERoots = roots
			}
			if err := acmeDNS.apply(&o.TLS, os.Getenv); err != nil {
				return err
			}
			if o.Database == "" {
				o.Database = os.Getenv(databaseEnv)
			}
			if err := oidc.apply(&o, os.Getenv); err != nil {
				return err
			}
			if err := builds.apply(&o); err != nil {
				return err
			}
			for i, h := range o.Kube.InsecureRegistries {
				p, err := registry.ParseHost(h)
				if err != nil {
					return fmt.Errorf("--registry-insecure: %w", err)
				}
				o.Kube.InsecureRegistries[i] = p
			}
			if o.Runtime != "docker" && o.Runtime != "kubernetes" {
				return fmt.Errorf("--runtime %q: use docker or kubernetes", o.Runtime)
			}
			return server.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data", "aim-data", "directory for aim's state (an SQLite file, unless --database), uploads and TLS")
	f.StringVar(&o.SecretKeyFile, "secret-key-file", "", "file of the key that seals solutions' secrets in the store, made (0600) when missing; keep it apart from the database's backups (default <data>/secret.key)")
	f.StringVar(&o.Database, "database", "", "keep aim's state in PostgreSQL at this postgres:// URL instead of the SQLite file in --data, so that API replicas share it (default $"+databaseEnv+", which keeps a password off the command line)")
	f.StringVar(&o.HTTP, "http", ":8080", "address the gateway listens on")
	f.StringVar(&o.Domain, "domain", "localhost", "solutions are served at <name>.<domain>; the apex serves the catalog and the API")
	f.DurationVar(&o.StartTimeout, "start-timeout", 60*time.Second, "how long a component may take to answer on port 8080")
	f.DurationVar(&o.WakeTimeout, "wake-timeout", 2*time.Minute, "how long a request waits for a sleeping solution to wake")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", 30*time.Minute, "put a solution to sleep after this long without requests (its aim.yaml scaling.idle wins)")
	f.DurationVar(&o.MaxIdleWithConnections, "max-idle-with-connections", 4*time.Hour, "how long open WebSockets and event streams alone keep a solution awake")
	f.DurationVar(&o.ScaleDownDelay, "scale-down-delay", time.Minute, "how long the load must stay low before a solution with scaling.max above 1 loses a replica")
	f.DurationVar(&o.ScaleEvery, "scale-every", time.Second, "how often idleness and load are judged")
	_ = f.MarkHidden("scale-every") // for tests that time sleeps finer than a second
	f.Int64Var(&o.MaxPending, "max-pending", 1000, "requests held per solution while it wakes; more get 503 with Retry-After")
	f.IntVar(&o.KeepGenerations, "keep-generations", 3, "generations that served whose images are kept, for aim rollback")
	f.StringVar(&o.ClientConfig, "client-config", "", "where the first start writes the CLI's configuration (default $XDG_CONFIG_HOME/aim/config.json; - for none)")
	f.StringVar(&o.DockerPrefix, "docker-prefix", "aim", "prefix of the containers and networks aim creates")
	f.StringVar(&o.Egress, "egress", "enforced", "enforced: iptables rules keep solutions from this host, link-local and private ranges (needs root); unrestricted: none")
	f.BoolVar(&logJSON, "log-json", false, "log as JSON")
	f.StringVar(&o.DebugAddr, "debug-addr", "", "serve Go's pprof profiles at this address (keep it on loopback)")
	f.Float64Var(&o.Limits.RPS, "rps", 100, "requests per second per client IP a solution takes unless its aim.yaml limits.rps says otherwise (0: unlimited)")
	f.IntVar(&o.Limits.Burst, "burst", 200, "requests a client may send at once before --rps applies")
	byteSizeVar(f, &o.Limits.Body, "max-body", 10<<20, "request body size a solution takes unless its aim.yaml limits.body says otherwise (0: unlimited)")
	f.Float64Var(&o.LimitCaps.RPS, "cap-rps", 0, "the most requests per second per client IP any aim.yaml may ask for (0: no cap)")
	f.IntVar(&o.LimitCaps.Burst, "cap-burst", 0, "the largest burst any aim.yaml may ask for (0: no cap)")
	byteSizeVar(f, &o.LimitCaps.Body, "cap-body", 0, "the largest request body any aim.yaml may ask for (0: no cap)")
	serverFlags(f, &o.Server)
	f.StringVar(&o.AccessLog, "access-log", "", "write a JSON line per request to a solution: stdout, stderr or a file path (default none)")
	f.Var(&tlsModeFlag{&o.TLS.Mode}, "tls", "HTTPS: off, internal (a CA of aim's own, in the data directory) or acme (certificates from --acme-ca; see --acme-dns for a wildcard)")
	f.StringVar(&o.HTTPS, "https", ":8443", "address HTTPS listens on when --tls is not off")
	f.StringVar(&o.TLS.ACMECA, "acme-ca", "", "ACME directory URL (default Let's Encrypt; using it means agreeing to its terms)")
	f.StringVar(&o.TLS.ACMEEmail, "acme-email", "", "contact address given to the ACME CA")
	f.StringVar(&acmeRoot, "acme-ca-root", "", "PEM file of the CA that signs the ACME server's own HTTPS (for a private ACME server)")
	acmeDNS.register(f)
	oidc.register(f)
	builds.register(f)
	f.DurationVar(&o.TLS.HSTS, "hsts", 0, "send Strict-Transport-Security with this max-age over HTTPS (0: none)")
	f.BoolVar(&o.TLS.HSTSIncludeSubdomains, "hsts-subdomains", false, "add includeSubDomains to Strict-Transport-Security")
	f.Var(&proxiesFlag{&o.TrustedProxies}, "trusted-proxies", "comma-separated addresses or CIDRs whose X-Forwarded-For names the client (for rate limits and access logs)")
	f.StringVar(&o.Runtime, "runtime", "docker", "where solutions run: docker (this host's engine) or kubernetes (Solutions in a cluster, served by aim's operator and gateway; serve is then the API and catalog only)")
	f.StringVar(&o.Kube.Kubeconfig, "kubeconfig", "", "with --runtime kubernetes: kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&o.Kube.Namespace, "namespace", "", "with --runtime kubernetes: namespace of the Solutions (default: the pod's own, or the kubeconfig context's)")
	f.StringSliceVar(&o.Kube.InsecureRegistries, "registry-insecure", nil, "with --runtime kubernetes: registries (host[:port], comma-separated) that serve plain HTTP, where `aim registry login` is tried over HTTP; every other is tried over HTTPS only")
	return cmd
}

func deployCmd(g *globals) *cobra.Command {
	var name, image string
	var skipChecks, quiet bool
	cmd := &cobra.Command{
		Use:   "deploy [DIR]",
		Short: "Build and start a solution from DIR/aim.yaml, or from an image with --name and --image",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := deployRequest(args, name, image)
			if err != nil {
				return err
			}
			req.SkipChecks = skipChecks
			c, err := g.client()
			if err != nil {
				return err
			}
			info, err := c.Deploy(cmd.Context(), req, func(e api.Event) {
				if quiet {
					return
				}
				if e.Component != "" {
					fmt.Fprintf(g.errOut, "%s | %s\n", e.Component, e.Message)
				} else {
					fmt.Fprintf(g.errOut, "==> %s\n", e.Message)
				}
			})
			if err != nil {
				return err
			}
			if !quiet && len(info.Findings) > 0 {
				fmt.Fprintf(g.errOut, "==> serving, with %s:\n", pluralize(len(info.Findings), "finding"))
				writeFindings(g.errOut, info)
			}
			fmt.Fprintln(g.out, info.URL)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "name of a one-component solution (with --image)")
	f.StringVar(&image, "image", "", "image the engine has or can pull (a private registry: aim registry login), for a one-component solution (with --name)")
	f.BoolVar(&skipChecks, "skip-checks", false, "deploy without the conformance checks (operators only; the status says so)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the URL")
	return cmd
}

func deployRequest(args []string, name, image string) (client.DeployRequest, error) {
	if image != "" || name != "" {
		if len(args) > 0 || image == "" || name == "" {
			return client.DeployRequest{}, errors.New("use either DIR, or --name and --image together")
		}
		if err := spec.ValidName(name); err != nil {
			return client.DeployRequest{}, fmt.Errorf("--name: %w", err)
		}
		m := spec.Manifest{Name: name, Components: []spec.Component{{Name: "web", Image: image}}}
		b, err := yaml.Marshal(&m)
		if err != nil {
			return client.DeployRequest{}, err
		}
		return client.DeployRequest{Name: name, Manifest: b}, nil
	}
	dir := "."
	if len(args) == 1 {
		dir = args[0]
	}
	path := filepath.Join(dir, spec.FileName)
	data, err := os.ReadFile(path)
	if err != nil {
		return client.DeployRequest{}, fmt.Errorf("reading the manifest: %w", err)
	}
	m, err := spec.Parse(path, data)
	if err != nil {
		return client.DeployRequest{}, err
	}
	req := client.DeployRequest{Name: m.Name, Manifest: data, Contexts: map[string]string{}, Dockerfiles: map[string]string{}}
	if m.Thumbnail != "" {
		req.Thumbnail = filepath.Join(dir, m.Thumbnail)
		if fi, err := os.Stat(req.Thumbnail); err != nil || !fi.Mode().IsRegular() {
			return client.DeployRequest{}, fmt.Errorf("%s: thumbnail %s is not a file in %s", path, m.Thumbnail, dir)
		}
	}
	for _, c := range m.Components {
		if c.Build == "" {
			continue
		}
		bdir := filepath.Join(dir, c.Build)
		df := c.Dockerfile
		if df == "" {
			df = "Dockerfile"
		}
		if _, err := os.Stat(filepath.Join(bdir, df)); err != nil {
			return client.DeployRequest{}, fmt.Errorf("%s: component %s builds from %s, which has no %s", path, c.Name, bdir, df)
		}
		req.Contexts[c.Name] = bdir
		req.Dockerfiles[c.Name] = df
	}
	return req, nil
}

func lsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List solutions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			sols, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tURL\tTITLE")
			for _, s := range sols {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.State, s.URL, s.Title)
			}
			return tw.Flush()
		},
	}
}

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status NAME",
		Short: "Show a solution's components, replicas, state and last error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			// Only a solution's managers see its volumes; others, and an
			// older server, get the status without them.
			vols, verr := c.Volumes(cmd.Context(), args[0])
			printStatus(g.out, s, vols, verr == nil)
			return nil
		},
	}
}

func printStatus(w io.Writer, s *solution.Info, vols []solution.Volume, volsKnown bool) {
	fmt.Fprintf(w, "Name:        %s\nTitle:       %s\nURL:         %s\nState:       %s\n", s.Name, s.Title, s.URL, s.State)
	if s.Reason != "" {
		// A report's lines line up under the first.
		fmt.Fprintf(w, "Last error:  %s\n", strings.ReplaceAll(s.Reason, "\n", "\n             "))
	}
	if s.SkipChecks {
		fmt.Fprintln(w, "Checks:      skipped at deploy (--skip-checks)")
	} else if len(s.Findings) > 0 {
		fmt.Fprintf(w, "Checks:      %s at deploy:\n", pluralize(len(s.Findings), "finding"))
		writeFindings(w, s)
	}
	if s.Manifest != nil {
		fmt.Fprintf(w, "Egress:      %s\n", egressLine(s.Manifest.Egress))
	}
	if volsKnown {
		printVolumes(w, vols)
	}
	fmt.Fprintf(w, "Generation:  %d\n\n", s.Generation)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tPUBLIC\tREPLICAS\tRESTARTS\tIMAGE")
	for _, c := range s.Components {
		pub := "no"
		if c.Public {
			pub = strings.Join(c.Paths, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\n", c.Name, pub, c.Running, c.Replicas, c.Restarts, c.Image)
	}
	tw.Flush()
}

// egressLine says what a solution's egress lets it reach
// (docs/security.md, "A solution's egress").
func egressLine(e spec.Egress) string {
	if e.Closed() {
		return "none: its own components only, and DNS"
	}
	return "default: the internet, not the host's, private or link-local addresses"
}

// writeFindings writes the rules that warned or failed at a deploy, as
// aim check writes them, indented.
func writeFindings(w io.Writer, s *solution.Info) {
	res := make([]check.Result, len(s.Findings))
	for i, f := range s.Findings {
		res[i] = check.Result{ID: f.ID, Component: f.Component, Rule: f.Rule, Status: check.Status(f.Status), Evidence: f.Evidence, Fix: f.Fix}
	}
	_ = check.WriteResults(w, "  ", res, len(s.Components) > 1)
}

func pluralize(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return fmt.Sprintf("%d %ss", n, s)
}

func logsCmd(g *globals) *cobra.Command {
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs NAME [COMPONENT]",
		Short: "Print a solution's logs",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			comp := ""
			if len(args) == 2 {
				comp = args[1]
			}
			return c.Logs(cmd.Context(), args[0], comp, follow, tail, g.out)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVar(&tail, "tail", 0, "print only the last N lines (0: all)")
	return cmd
}

func rmCmd(g *globals) *cobra.Command {
	var deleteData bool
	cmd := &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a solution: its containers, network and images; its volumes only with --delete-data",
		Long: `Remove a solution: its containers, network and images. Its volumes are kept, for a
later deploy of the same name by the same owner or for aim volume export, unless
--delete-data is given. --delete-data also deletes the volumes a solution removed
before has kept.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			res, err := c.Remove(cmd.Context(), args[0], deleteData)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "removed %s\n", args[0])
			for _, v := range res.Deleted {
				fmt.Fprintf(g.out, "deleted volume %s (%s)\n", v.Name, v.Ref)
			}
			for _, v := range res.Kept {
				fmt.Fprintf(g.out, "kept volume %s (%s, %s used): aim volume export %s %s saves it, aim rm --delete-data %s deletes it\n",
					v.Name, v.Ref, usedSize(v.Used), args[0], v.Name, args[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deleteData, "delete-data", false, "also delete the solution's volumes")
	return cmd
}

func actionCmd(g *globals, action, short string) *cobra.Command {
	return &cobra.Command{
		Use:   action + " NAME",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.Post(cmd.Context(), args[0], action)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%s is %s\n", s.Name, s.State)
			return nil
		},
	}
}

// Main runs the CLI and returns the process's exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "aim:", err)
		return 1
	}
	return 0
}

// byteSizeVar defines a flag that takes sizes like 10MiB.
func byteSizeVar(f *pflag.FlagSet, p *spec.ByteSize, name string, def spec.ByteSize, usage string) {
	*p = def
	f.Var((*byteSizeFlag)(p), name, usage)
}

type byteSizeFlag spec.ByteSize

func (b *byteSizeFlag) String() string { return spec.ByteSize(*b).String() }
func (b *byteSizeFlag) Type() string   { return "size" }
func (b *byteSizeFlag) Set(s string) error {
	v, err := spec.ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSizeFlag(v)
	return nil
}

type tlsModeFlag struct{ m *certs.Mode }

func (f *tlsModeFlag) String() string {
	if f.m == nil || *f.m == "" {
		return "off"
	}
	return string(*f.m)
}
func (f *tlsModeFlag) Type() string { return "mode" }
func (f *tlsModeFlag) Set(s string) error {
	m, err := certs.ParseMode(s)
	if err != nil {
		return err
	}
	*f.m = m
	return nil
}

type proxiesFlag struct{ p *gateway.Proxies }

func (f *proxiesFlag) String() string {
	if f.p == nil {
		return ""
	}
	s := make([]string, len(*f.p))
	for i, p := range *f.p {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
func (f *proxiesFlag) Type() string { return "cidrs" }
func (f *proxiesFlag) Set(s string) error {
	ps, err := gateway.ParseProxies(s)
	if err != nil {
		return err
	}
	*f.p = append(*f.p, ps...)
	return nil
}
