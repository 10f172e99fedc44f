package kube

import (
	"context"
	"fmt"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// AwakeReplicas is how many replicas of each component an awake solution
// runs at least: max(scaling.min, 1), as the operator creates them.
func AwakeReplicas(m *spec.Manifest) int32 {
	return max(int32(m.Scaling.Min), 1)
}

// ScaleUp sets every component of a solution below n replicas to n.
func ScaleUp(ctx context.Context, kc kubernetes.Interface, ns, name string, n int32) error {
	return ScaleTo(ctx, kc, ns, name, n, true)
}

// ScaleTo sets the replicas of a solution's Deployments through their
// scale subresource; with upOnly it leaves those at n or above alone.
func ScaleTo(ctx context.Context, kc kubernetes.Interface, ns, name string, n int32, upOnly bool) error {
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + name})
	if err != nil {
		return fmt.Errorf("listing the deployments of %s: %w", name, err)
	}
	return ScaleDeployments(ctx, kc, ns, name, deps.Items, n, upOnly)
}

func ScaleDeployments(ctx context.Context, kc kubernetes.Interface, ns, name string, deps []appsv1.Deployment, n int32, upOnly bool) error {
	if len(deps) == 0 {
		return fmt.Errorf("solution %s has no deployments (yet): is the operator running?", name)
	}
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	for _, d := range deps {
		cur := int32(1)
		if d.Spec.Replicas != nil {
			cur = *d.Spec.Replicas
		}
		if cur == n || upOnly && cur > n {
			continue
		}
		_, err := kc.AppsV1().Deployments(ns).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}, "scale")
		if err != nil {
			return fmt.Errorf("scaling deployment %s to %d: %w", d.Name, n, err)
		}
	}
	return nil
}

// FieldManager names aim's gateway and API in managedFields.
const FieldManager = "aim-gateway"
