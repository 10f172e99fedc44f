package operator

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	netv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

// linkerdNamespace is where Linkerd's control plane runs; meshed proxies
// must reach it for their identity and their routes.
const linkerdNamespace = "linkerd"

// labelNamespaceName is the label the API server puts on every namespace,
// naming it.
const labelNamespaceName = "kubernetes.io/metadata.name"

// renderNetworkPolicies keeps a solution apart from everything else, as
// its own bridge network does on Docker. Policies add up, so:
//
//   - <solution>.siblings selects all of the solution's pods and lets in
//     only its own pods, and lets out only to its own pods and to DNS;
//   - <solution>.gateway selects its public pods only and also lets in
//     the gateway's pods on 8080.
//
// Any other traffic to or from the solution's pods, other solutions'
// included, is dropped (by a CNI that enforces NetworkPolicy).
func renderNetworkPolicies(sol *v1alpha1.Solution, o Options) []*netv1ac.NetworkPolicyApplyConfiguration {
	own := func() *netv1ac.NetworkPolicyPeerApplyConfiguration {
		return netv1ac.NetworkPolicyPeer().WithPodSelector(
			metav1ac.LabelSelector().WithMatchLabels(map[string]string{v1alpha1.LabelSolution: sol.Name}))
	}
	dns := netv1ac.NetworkPolicyEgressRule().WithPorts(
		// To any address: cluster DNS may be a Service, a node-local cache
		// on a link-local address, or a host's resolver, which no pod
		// selector matches.
		netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolUDP).WithPort(intstr.FromInt32(53)),
		netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(53)))
	egress := []*netv1ac.NetworkPolicyEgressRuleApplyConfiguration{
		netv1ac.NetworkPolicyEgressRule().WithTo(own()),
		dns,
	}
	if o.Mesh {
		egress = append(egress, netv1ac.NetworkPolicyEgressRule().WithTo(
			netv1ac.NetworkPolicyPeer().WithNamespaceSelector(
				metav1ac.LabelSelector().WithMatchLabels(map[string]string{labelNamespaceName: linkerdNamespace}))))
	}
	siblings := netv1ac.NetworkPolicy(sol.Name+".siblings", sol.Namespace).
		WithLabels(solutionLabels(sol.Name)).
		WithOwnerReferences(ownerRef(sol)).
		WithSpec(netv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{v1alpha1.LabelSolution: sol.Name})).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(netv1ac.NetworkPolicyIngressRule().WithFrom(own())).
			WithEgress(egress...))

	gw := netv1ac.NetworkPolicyPeer().WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(o.GatewayLabels))
	if o.GatewayNamespace != "" {
		gw.WithNamespaceSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{labelNamespaceName: o.GatewayNamespace}))
	}
	gateway := netv1ac.NetworkPolicy(sol.Name+".gateway", sol.Namespace).
		WithLabels(solutionLabels(sol.Name)).
		WithOwnerReferences(ownerRef(sol)).
		WithSpec(netv1ac.NetworkPolicySpec().
			WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{
				v1alpha1.LabelSolution: sol.Name,
				v1alpha1.LabelPublic:   "true",
			})).
			WithPolicyTypes(networkingv1.PolicyTypeIngress).
			WithIngress(netv1ac.NetworkPolicyIngressRule().
				WithFrom(gw).
				WithPorts(netv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromString("http")))))
	return []*netv1ac.NetworkPolicyApplyConfiguration{siblings, gateway}
}
