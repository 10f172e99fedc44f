package operator

import (
	"context"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

// renderClaims are the solution's volumes as claims. They carry no owner
// reference: sleeping scales Deployments to zero, which leaves claims
// alone anyway, but a Solution's deletion (aim rm) would take owned
// claims with it, and aim rm keeps data unless told otherwise. The
// annotation remembers whose they are.
func renderClaims(sol *v1alpha1.Solution, m *spec.Manifest) []*corev1ac.PersistentVolumeClaimApplyConfiguration {
	var out []*corev1ac.PersistentVolumeClaimApplyConfiguration
	for _, v := range m.Volumes() {
		l := solutionLabels(sol.Name)
		l[v1alpha1.LabelVolume] = v.Name
		out = append(out, corev1ac.PersistentVolumeClaim(v1alpha1.ClaimName(sol.Name, v.Name), sol.Namespace).
			WithLabels(l).
			WithAnnotations(map[string]string{v1alpha1.AnnotationOwner: v1alpha1.OwnerOf(sol)}).
			WithSpec(corev1ac.PersistentVolumeClaimSpec().
				// ReadWriteOnce is what every storage class offers; the
				// components that share a volume are scheduled to one
				// node (see withVolumes).
				WithAccessModes(corev1.ReadWriteOnce).
				WithResources(corev1ac.VolumeResourceRequirements().
					WithRequests(corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(int64(v.Size), resource.BinarySI)}))))
	}
	return out
}

// withVolumes adds c's volumes to its pod and container, and reports
// whether one is read-write. A component that runs as uid 65534 gets
// fsGroup 65534, so that the kubelet gives it the claim's files.
func withVolumes(sol string, c spec.Component, pod *corev1ac.PodSpecApplyConfiguration) (writer bool) {
	if len(c.Volumes) == 0 {
		return false
	}
	ctr := &pod.Containers[0]
	for i, v := range c.Volumes {
		name := "volume-" + strconv.Itoa(i)
		pod.WithVolumes(corev1ac.Volume().WithName(name).
			WithPersistentVolumeClaim(corev1ac.PersistentVolumeClaimVolumeSource().WithClaimName(v1alpha1.ClaimName(sol, v.Name)).WithReadOnly(v.ReadOnly)))
		ctr.WithVolumeMounts(corev1ac.VolumeMount().WithName(name).WithMountPath(v.Path).WithReadOnly(v.ReadOnly))
		writer = writer || !v.ReadOnly
	}
	if !c.RunAsRoot {
		pod.SecurityContext.WithFSGroup(nobody).WithFSGroupChangePolicy(corev1.FSGroupChangeOnRootMismatch)
	}
	// Sharers of a ReadWriteOnce claim must share its node: the
	// preferred affinity to the solution's pods becomes required.
	terms := pod.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	if len(terms) > 0 && terms[0].PodAffinityTerm != nil {
		pod.Affinity.PodAffinity.WithRequiredDuringSchedulingIgnoredDuringExecution(terms[0].PodAffinityTerm)
		pod.Affinity.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution = nil
	}
	return writer
}

// ensureClaims creates the solution's claims that do not exist. A claim
// is created once and then left alone (its spec is mostly immutable; a
// bigger size is the storage class's to allow, by hand). One that a
// solution of the same name made for another owner, or that aim did not
// make, fails the solution: it is someone else's data.
func (r *Reconciler) ensureClaims(ctx context.Context, sol *v1alpha1.Solution, m *spec.Manifest) (*failure, error) {
	for _, want := range renderClaims(sol, m) {
		var cur corev1.PersistentVolumeClaim
		key := types.NamespacedName{Namespace: sol.Namespace, Name: *want.Name}
		err := r.reader.Get(ctx, key, &cur)
		switch {
		case err == nil:
			if cur.Labels[v1alpha1.LabelSolution] != sol.Name || cur.Annotations[v1alpha1.AnnotationOwner] != v1alpha1.OwnerOf(sol) {
				return &failure{ReasonNameConflict, fmt.Sprintf("persistent volume claim %s already exists and holds data of another owner or was not made by aim: "+
					"it is not mounted; an admin deletes it, or deploy under another name", cur.Name)}, nil
			}
			continue
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("reading persistent volume claim %s: %w", *want.Name, err)
		}
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: *want.Name, Namespace: sol.Namespace, Labels: want.Labels, Annotations: want.Annotations},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: want.Spec.AccessModes,
				Resources:   corev1.VolumeResourceRequirements{Requests: *want.Spec.Resources.Requests},
			},
		}
		if err := r.client.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
			return applyFailure("persistent volume claim", pvc.Name, err), err
		}
	}
	return nil, nil
}
