//go:build cluster

package operator

import (
	"context"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/aimhub/aim/api/v1alpha1"
)

// testVolumes: the operator, with the chart's permissions, creates a
// solution's claim, owned by nothing (so that deleting the Solution keeps
// it), and mounts it in a Deployment that is recreated, never rolled; a
// claim of the same name that aim did not make fails the solution.
func (e *env) testVolumes(t *testing.T) {
	ctx := context.Background()
	sol := e.solution(t, "name: keeper\ncomponents:\n  - name: web\n    image: k:1\n    volumes: [{name: data, path: /data, size: 1Gi}]\n", nil)
	e.waitState(t, sol.Name, v1alpha1.StateRunning, 20*time.Second)
	var pvc corev1.PersistentVolumeClaim
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: "keeper.data"}, &pvc); err != nil {
		t.Fatal(err)
	}
	if len(pvc.OwnerReferences) != 0 || pvc.Labels[v1alpha1.LabelVolume] != "data" || pvc.Annotations[v1alpha1.AnnotationOwner] != "" {
		t.Errorf("claim: owners %v, labels %v, annotations %v", pvc.OwnerReferences, pvc.Labels, pvc.Annotations)
	}
	if q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("claim requests %s, want 1Gi", &q)
	}
	d := e.deployment(t, "keeper-web")
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %s, want Recreate", d.Spec.Strategy.Type)
	}
	found := false
	for _, v := range d.Spec.Template.Spec.Volumes {
		found = found || v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == "keeper.data"
	}
	if !found {
		t.Errorf("the pod does not mount keeper.data: %+v", d.Spec.Template.Spec.Volumes)
	}

	// A claim made by hand is someone else's data.
	hand := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "taken.data", Namespace: e.ns},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	if err := e.c.Create(ctx, hand); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(ctx, hand) })
	taken := e.solution(t, "name: taken\ncomponents:\n  - name: web\n    image: k:1\n    volumes: [{name: data, path: /data, size: 1Gi}]\n", nil)
	s := e.waitState(t, taken.Name, v1alpha1.StateFailed, 10*time.Second)
	if f := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionFailed); f == nil || f.Reason != ReasonNameConflict {
		t.Errorf("Failed: %+v, want %s", f, ReasonNameConflict)
	}
}
