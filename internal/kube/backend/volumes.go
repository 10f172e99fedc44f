package backend

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

var _ api.Volumes = (*Solutions)(nil)

// errNoTransfer: the API cannot stream a claim on a cluster (that needs a
// pod that mounts it); docs/operations.md says how to back one up.
var errNoTransfer = &solution.InputError{Msg: "aim volume export and import work on Docker only: on Kubernetes, back a volume up with the storage's snapshots (a VolumeSnapshot of its claim) or a pod that mounts the claim (docs/operations.md)"}

// Volumes lists the claims the operator made for the solution name, which
// outlive it.
func (s *Solutions) Volumes(ctx context.Context, name string) ([]solution.Volume, error) {
	list, err := s.kc.CoreV1().PersistentVolumeClaims(s.cfg.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{v1alpha1.LabelSolution: name}).String(),
	})
	if err != nil {
		return nil, refused("listing the volumes of "+name, fmt.Errorf("listing the claims of %s: %w", name, err))
	}
	var out []solution.Volume
	for _, c := range list.Items {
		// One being deleted is not kept (pvc-protection holds it until
		// no pod mounts it).
		if c.Labels[v1alpha1.LabelVolume] == "" || c.DeletionTimestamp != nil {
			continue
		}
		q := c.Spec.Resources.Requests[corev1.ResourceStorage]
		out = append(out, solution.Volume{Name: c.Labels[v1alpha1.LabelVolume], Ref: "persistentvolumeclaim/" + c.Name,
			Size: spec.ByteSize(q.Value()), Used: -1, Owner: c.Annotations[v1alpha1.AnnotationOwner]})
	}
	return out, nil
}

// DeleteVolume deletes a claim of a removed solution.
func (s *Solutions) DeleteVolume(ctx context.Context, name, vol string) error {
	// The API server, not the cache: Remove has just waited there for
	// the Solution to go, and the cache may not have seen it go yet.
	err := s.client.Get(ctx, s.key(name), &v1alpha1.Solution{})
	switch {
	case err == nil:
		return &solution.InputError{Msg: fmt.Sprintf("solution %s still exists: remove it with its data (aim rm --delete-data %s)", name, name)}
	case !apierrors.IsNotFound(err):
		return refused("deleting volume "+vol, fmt.Errorf("reading solution %s: %w", name, err))
	}
	claim := v1alpha1.ClaimName(name, vol)
	err = s.kc.CoreV1().PersistentVolumeClaims(s.cfg.Namespace).Delete(ctx, claim, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return refused("deleting volume "+vol, fmt.Errorf("deleting claim %s: %w", claim, err))
	}
	return nil
}

// ExportVolume is not offered on Kubernetes (errNoTransfer).
func (s *Solutions) ExportVolume(context.Context, string, string, io.Writer) error {
	return errNoTransfer
}

// ImportVolume is not offered on Kubernetes (errNoTransfer).
func (s *Solutions) ImportVolume(context.Context, string, string, io.Reader) error {
	return errNoTransfer
}
