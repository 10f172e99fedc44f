// Package operator serves Solutions (aim.dev/v1alpha1) on Kubernetes: for
// each component a Deployment and a Service, NetworkPolicies that keep
// solutions apart, and sleep when idle through the Deployments' scale
// subresource; each distinct spec is kept as a ControllerRevision, its
// generation (generations.go). Rendering (render*.go) is pure and pinned
// by golden files; the reconciler applies what it renders with
// server-side apply.
package operator

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// Options are the operator's settings.
type Options struct {
	// Domain: a solution is served at <name>.<Domain>. Required.
	Domain string
	// URLScheme of status.url: "https" or "http". Empty means https.
	URLScheme string
	// IdleTimeout puts to sleep the solutions that name no scaling.idle.
	// Zero means 30 minutes.
	IdleTimeout time.Duration
	// Mesh asks Linkerd to inject its proxy into every solution's pods.
	Mesh bool
	// GatewayNamespace is where the gateway's pods run. Empty means each
	// solution's own namespace.
	GatewayNamespace string
	// GatewayLabels select the gateway's pods, the only ones that may
	// reach a solution's public components from outside it. Required: an
	// empty selector would let every pod in.
	GatewayLabels map[string]string
	// DefaultNodeGroup is the node group of solutions that name none.
	// Empty means they are not confined to a group.
	DefaultNodeGroup string
	// NodeGroups are the groups a solution may name. Empty allows any.
	NodeGroups []string
	// Defaults fill a component's unset resources. Zero means
	// spec.DefaultDefaults.
	Defaults spec.Defaults
	// EgressDeny are IPv4 CIDRs that solutions with the default egress
	// may not reach, besides the private, carrier-grade NAT, link-local
	// and loopback ranges, which they never reach: the cluster's node
	// addresses, pod and service CIDRs where those are not private.
	// Empty means none.
	EgressDeny []string
	// DNSNamespace and DNSLabels select the cluster DNS's pods, the only
	// ones every solution may send DNS queries to. Empty means
	// kube-system; nil labels mean k8s-app=kube-dns.
	DNSNamespace string
	DNSLabels    map[string]string
	// DNSCIDRs are where else solutions may send DNS queries, e.g. a
	// node-local cache's 169.254.20.10/32, which no pod selector
	// matches. Empty means none.
	DNSCIDRs []string
	// KeepGenerations is how many generations that served a solution's
	// ControllerRevisions keep for a rollback (the current one among
	// them), and as many that failed, for the history. Zero means 3.
	KeepGenerations int
	// PullSecret names a kubernetes.io/dockerconfigjson Secret in the
	// solutions' namespace that every solution pod pulls with (the
	// chart's <release>-aim-pull, for its registry). Empty means none.
	PullSecret string
}

// withDefaults fills o's zero fields; validate checks the result.
func (o Options) withDefaults() Options {
	if o.URLScheme == "" {
		o.URLScheme = "https"
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.KeepGenerations == 0 {
		o.KeepGenerations = 3
	}
	if o.DNSNamespace == "" {
		o.DNSNamespace = "kube-system"
	}
	if o.DNSLabels == nil {
		o.DNSLabels = map[string]string{"k8s-app": "kube-dns"}
	}
	if o.Defaults == (spec.Defaults{}) {
		o.Defaults = spec.DefaultDefaults
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Domain == "" {
		errs = append(errs, errors.New("the domain is required (solutions are served at <name>.<domain>)"))
	}
	if o.URLScheme != "http" && o.URLScheme != "https" {
		errs = append(errs, fmt.Errorf("URL scheme %q: use http or https", o.URLScheme))
	}
	if o.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle timeout %s is negative", o.IdleTimeout))
	}
	if o.KeepGenerations < 0 {
		errs = append(errs, fmt.Errorf("keep generations %d is negative", o.KeepGenerations))
	}
	if len(o.GatewayLabels) == 0 {
		errs = append(errs, errors.New("gateway labels are required: without them every pod could reach public components"))
	}
	if o.DefaultNodeGroup != "" {
		if err := spec.ValidName(o.DefaultNodeGroup); err != nil {
			errs = append(errs, fmt.Errorf("default node group: %w", err))
		} else if len(o.NodeGroups) > 0 && !slices.Contains(o.NodeGroups, o.DefaultNodeGroup) {
			errs = append(errs, fmt.Errorf("default node group %q is not one of the node groups %s", o.DefaultNodeGroup, strings.Join(o.NodeGroups, ", ")))
		}
	}
	for _, g := range o.NodeGroups {
		if err := spec.ValidName(g); err != nil {
			errs = append(errs, fmt.Errorf("node group: %w", err))
		}
	}
	for _, c := range o.EgressDeny {
		if err := validCIDR(c, true); err != nil {
			errs = append(errs, fmt.Errorf("egress deny: %w", err))
		}
	}
	for _, c := range o.DNSCIDRs {
		if err := validCIDR(c, false); err != nil {
			errs = append(errs, fmt.Errorf("DNS CIDRs: %w", err))
		}
	}
	return errors.Join(errs...)
}

// validCIDR checks a CIDR as a NetworkPolicy's ipBlock needs it: in its
// canonical form, and IPv4 where v4 says so.
func validCIDR(c string, v4 bool) error {
	p, err := netip.ParsePrefix(c)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a CIDR like 192.0.2.0/24 (a single address is 192.0.2.1/32)", c)
	case v4 && !p.Addr().Is4():
		return fmt.Errorf("%q is not IPv4: solutions reach nothing over IPv6 but their own pods and the DNS pods, so there is nothing to deny", c)
	case p.Masked() != p:
		return fmt.Errorf("%q has bits set past its prefix length: write %s", c, p.Masked())
	}
	return nil
}
