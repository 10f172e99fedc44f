package operator

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

// linkerdNamespace is where Linkerd's control plane runs; meshed proxies
// must reach it for their identity and their routes.
const linkerdNamespace = "linkerd"

// labelNamespaceName is the label the API server puts on every namespace,
// naming it.
const labelNamespaceName = "kubernetes.io/metadata.name"

// blockedIPv4 are the destinations the default egress keeps out, as the
// Docker runtime's firewall does: the private ranges (RFC 1918), where
// clusters put their nodes, pods and services; carrier-grade NAT, which
// some use for pods and services; link-local, where the cloud's metadata
// address 169.254.169.254 is; and loopback, which a CNI that routes it
// would otherwise let through to the node.
var blockedIPv4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"}

// renderNetworkPolicies keeps a solution apart from everything else, as
// its own bridge network does on Docker. Policies add up, so:
//
//   - <solution>.siblings selects all of the solution's pods and lets in
//     only its own pods, and lets out only to its own pods and to the
//     cluster's DNS;
//   - <solution>.internet, with the default egress only, also lets them
//     out to every IPv4 address but the blocked ranges and o.EgressDeny;
//   - <solution>.gateway selects its public pods only and also lets in
//     the gateway's pods on 8080.
//
// Any other traffic to or from the solution's pods, other solutions'
// and IPv6 included, is dropped (by a CNI that enforces NetworkPolicy).
func renderNetworkPolicies(sol *v1alpha1.Solution, egress spec.Egress, o Options) []*netv1ac.NetworkPolicyApplyConfiguration {
	selector := func() *metav1ac.LabelSelectorApplyConfiguration {
		return metav1ac.LabelSelector().WithMatchLabels(map[string]string{v1alpha1.LabelSolution: sol.Name})
	}
	policy := func(name string) *netv1ac.NetworkPolicyApplyConfiguration {
		return netv1ac.NetworkPolicy(sol.Name+"."+name, sol.Namespace).
			WithLabels(solutionLabels(sol.Name)).
			WithOwnerReferences(ownerRef(sol))
	}
	own := netv1ac.NetworkPolicyPeer().WithPodSelector(selector())
	out := []*netv1ac.NetworkPolicyApplyConfiguration{
		policy("siblings").WithSpec(netv1ac.NetworkPolicySpec().
			WithPodSelector(selector()).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(netv1ac.NetworkPolicyIngressRule().WithFrom(own)).
			WithEgress(siblingsEgress(own, o)...)),
	}
	if !egress.Closed() {
		except := append(append([]string(nil), blockedIPv4...), o.EgressDeny...)
		out = append(out, policy("internet").WithSpec(netv1ac.NetworkPolicySpec().
			WithPodSelector(selector()).
			WithPolicyTypes(networkingv1.PolicyTypeEgress).
			WithEgress(netv1ac.NetworkPolicyEgressRule().WithTo(
				netv1ac.NetworkPolicyPeer().WithIPBlock(netv1ac.IPBlock().WithCIDR("0.0.0.0/0").WithExcept(except...))))))
	}

	gw := netv1ac.NetworkPolicyPeer().WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(o.GatewayLabels))
	if o.GatewayNamespace != "" {
		gw.WithNamespaceSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{labelNamespaceName: o.GatewayNamespace}))
	}
	return append(out, policy("gateway").WithSpec(netv1ac.NetworkPolicySpec().
		WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{
			v1alpha1.LabelSolution: sol.Name,
			v1alpha1.LabelPublic:   "true",
		})).
		WithPolicyTypes(networkingv1.PolicyTypeIngress).
		WithIngress(netv1ac.NetworkPolicyIngressRule().
			WithFrom(gw).
			WithPorts(netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromString("http"))))))
}

// siblingsEgress is what every solution may reach, whatever its egress:
// its own pods, the cluster's DNS and, meshed, Linkerd's control plane.
// DNS is the DNS pods by their labels, not port 53 anywhere: the CNI sees
// a query to the kube-dns Service after kube-proxy has sent it on to a
// pod, and 53 anywhere would let a solution with egress: none talk to
// any server that listens there. A node-local cache, which no pod
// selector matches, is o.DNSCIDRs.
func siblingsEgress(own *netv1ac.NetworkPolicyPeerApplyConfiguration, o Options) []*netv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	dns := []*netv1ac.NetworkPolicyPeerApplyConfiguration{
		netv1ac.NetworkPolicyPeer().
			WithNamespaceSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{labelNamespaceName: o.DNSNamespace})).
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(o.DNSLabels)),
	}
	for _, c := range o.DNSCIDRs {
		dns = append(dns, netv1ac.NetworkPolicyPeer().WithIPBlock(netv1ac.IPBlock().WithCIDR(c)))
	}
	rules := []*netv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		netv1ac.NetworkPolicyEgressRule().WithTo(own),
		netv1ac.NetworkPolicyEgressRule().WithTo(dns...).WithPorts(
			netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolUDP).WithPort(intstr.FromInt32(53)),
			netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(53))),
	}
	if o.Mesh {
		rules = append(rules, netv1ac.NetworkPolicyEgressRule().WithTo(
			netv1ac.NetworkPolicyPeer().WithNamespaceSelector(
				metav1ac.LabelSelector().WithMatchLabels(map[string]string{labelNamespaceName: linkerdNamespace}))))
	}
	return rules
}
