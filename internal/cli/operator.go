package cli

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/aimhub/aim/internal/operator"
)

// operatorCmd runs the Kubernetes operator, which serves Solution objects.
func operatorCmd(g *globals) *cobra.Command {
	var c operator.Config
	var gatewayLabels, dnsLabels, kubeconfig string
	var nodeGroups []string
	var logJSON bool
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the Kubernetes operator: serve Solution objects (aim.dev/v1alpha1) as Deployments, Services and NetworkPolicies",
		Long: `Run the Kubernetes operator. For each Solution it keeps a Deployment and a
Service per component and NetworkPolicies that let in only the gateway (to
public components) and the solution's own components; it puts solutions
that saw no activity (the gateway's aim.dev/last-active annotation) for
their idle timeout to sleep by scaling them to zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h slog.Handler = slog.NewTextHandler(g.errOut, nil)
			if logJSON {
				h = slog.NewJSONHandler(g.errOut, nil)
			}
			c.Logger = slog.New(h)
			ctrl.SetLogger(logr.FromSlogHandler(h))
			gl, err := labels.ConvertSelectorToLabelsMap(gatewayLabels)
			if err != nil {
				return fmt.Errorf("--gateway-labels %q: %w", gatewayLabels, err)
			}
			c.GatewayLabels = gl
			dl, err := labels.ConvertSelectorToLabelsMap(dnsLabels)
			if err != nil {
				return fmt.Errorf("--dns-labels %q: %w", dnsLabels, err)
			}
			c.DNSLabels = dl
			for _, ng := range nodeGroups {
				if ng = strings.TrimSpace(ng); ng != "" {
					c.NodeGroups = append(c.NodeGroups, ng)
				}
			}
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
				&clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("finding the cluster (in-cluster, --kubeconfig, $KUBECONFIG or ~/.kube/config): %w", err)
			}
			return operator.Run(cmd.Context(), cfg, c)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Domain, "domain", "", "solutions are served at <name>.<domain> (required; status.url uses it)")
	f.StringVar(&c.URLScheme, "url-scheme", "https", "scheme of the solutions' status.url: https or http")
	f.DurationVar(&c.IdleTimeout, "idle-timeout", 30*time.Minute, "put a solution to sleep after this long without activity (its scaling.idle wins)")
	f.IntVar(&c.KeepGenerations, "keep-generations", 3, "generations that served whose specs each solution keeps (as ControllerRevisions), for aim rollback; as many that failed are kept for aim history")
	f.BoolVar(&c.Mesh, "mesh", false, "have Linkerd inject its proxy into solutions' pods (linkerd.io/inject: enabled) and let them reach its control plane")
	f.StringVar(&c.GatewayNamespace, "gateway-namespace", "", "namespace of the gateway's pods (default: each solution's own)")
	f.StringVar(&gatewayLabels, "gateway-labels", "app.kubernetes.io/name=aim,app.kubernetes.io/component=gateway", "labels of the gateway's pods, the only ones let in to public components")
	f.StringSliceVar(&c.EgressDeny, "egress-deny", nil, "IPv4 CIDRs solutions with the default egress may not reach besides the private, CGNAT, link-local and loopback ranges: the cluster's node addresses, pod and service CIDRs where they are not private, comma-separated")
	f.StringVar(&c.DNSNamespace, "dns-namespace", "kube-system", "namespace of the cluster DNS's pods, the only ones solutions may send DNS queries to")
	f.StringVar(&dnsLabels, "dns-labels", "k8s-app=kube-dns", "labels of the cluster DNS's pods")
	f.StringSliceVar(&c.DNSCIDRs, "dns-cidrs", nil, "CIDRs solutions may also send DNS queries to, e.g. a node-local cache's 169.254.20.10/32, comma-separated")
	f.StringVar(&c.DefaultNodeGroup, "default-node-group", "", "node group of solutions that name none (default: none, any node)")
	f.StringSliceVar(&nodeGroups, "node-groups", nil, "node groups solutions may name, comma-separated (default: any)")
	f.StringVar(&c.PullSecret, "pull-secret", "", "kubernetes.io/dockerconfigjson Secret in the solutions' namespace that their pods pull images with (imagePullSecrets; the chart's <release>-aim-pull)")
	f.StringVar(&c.Namespace, "namespace", "", "serve the Solutions of this namespace only (default: all namespaces)")
	f.StringVar(&c.MetricsAddr, "metrics-addr", ":8080", "address of the Prometheus metrics endpoint (0: off)")
	f.StringVar(&c.HealthAddr, "health-addr", ":8081", "address of /healthz and /readyz (0: off)")
	f.BoolVar(&c.LeaderElect, "leader-elect", false, "hold a Lease so that one replica at a time is active")
	f.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the pod's own)")
	f.Float32Var(&c.QPS, "kube-api-qps", 0, "requests a second each of the operator's API clients may send (0: no limit on the operator's side; the API server's Priority and Fairness shares its capacity)")
	f.IntVar(&c.Burst, "kube-api-burst", 0, "requests above --kube-api-qps a client may send at once (0: twice --kube-api-qps)")
	f.IntVar(&c.Workers, "workers", 8, "solutions reconciled at once")
	f.StringVar(&c.PprofAddr, "pprof-addr", "0", "address of Go's profiles at /debug/pprof/ (0: off; keep it private)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)")
	f.BoolVar(&logJSON, "log-json", false, "log as JSON")
	return cmd
}
