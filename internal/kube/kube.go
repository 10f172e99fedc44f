// Package kube is what aim's parts in a cluster share: finding the
// cluster (Connect), the scheme with aim's Solution type, klog and
// controller-runtime logging through slog, scaling a solution's
// Deployments, and diagnosing why its pods do not serve. The parts
// themselves are its subpackages, one per role:
//
//   - router keeps an in-cluster gateway's route table in step with the
//     Solutions and their EndpointSlices, wakes sleeping solutions by
//     scaling their Deployments, and reports activity on the Solutions so
//     that the operator judges idleness from every gateway replica;
//   - kubegateway is `aim gateway`: that gateway as a server, with its
//     certificates;
//   - backend is the REST API's controller for `aim serve --runtime
//     kubernetes`: deploy, list, status, logs, remove, history and
//     rollback, as Solutions;
//   - certstore keeps the gateway's ACME state in Secrets and Leases.
//
// None keeps state of its own: the Solutions, Deployments and
// EndpointSlices are the state, so any replica may restart at any time.
package kube

import (
	"fmt"
	"log/slog"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/aimhub/aim/api/v1alpha1"
)

// The permissions of the gateway; generate the chart's role from them
// with controller-gen (rbac:roleName=aim-gateway paths=./internal/kube/...).
//
// +kubebuilder:rbac:groups=aim.dev,resources=solutions,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=discovery.k8s.io,resources=endpointslices,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list
// +kubebuilder:rbac:groups=apps,resources=deployments/scale,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get

// Connect finds the cluster and the namespace to work in: kubeconfig if
// named, else in-cluster, else $KUBECONFIG or ~/.kube/config; namespace if
// named, else the pod's own (in a cluster) or the kubeconfig context's.
func Connect(kubeconfig, namespace string) (*rest.Config, string, error) {
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig, Precedence: clientcmd.NewDefaultClientConfigLoadingRules().Precedence},
		&clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("finding the cluster (--kubeconfig, in-cluster, $KUBECONFIG or ~/.kube/config): %w", err)
	}
	// The defaults (5 requests a second, bursts of 10) would make a wake
	// of a many-component solution wait on the client's own limiter.
	cfg.QPS, cfg.Burst = 50, 100
	if namespace == "" {
		if namespace, _, err = cc.Namespace(); err != nil {
			return nil, "", fmt.Errorf("finding the namespace: %w", err)
		}
	}
	return cfg, namespace, nil
}

// UseLogger sends the logs of client-go and controller-runtime to log
// (controller-runtime otherwise complains, with a stack, that it has
// none).
func UseLogger(log *slog.Logger) {
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	klog.SetSlogLogger(log)
}

// Scheme knows the types this package reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}
