package operator

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/aimhub/aim/internal/spec"
)

const (
	// gpuResource is what NVIDIA's device plugin offers.
	gpuResource corev1.ResourceName = "nvidia.com/gpu"
	// gpuNodeGroup is where a component asking for a GPU runs unless its
	// solution names a node group.
	gpuNodeGroup = "gpu"
	// gpuProductLabel is the node label NVIDIA's GPU feature discovery
	// puts the GPU model in (resources.gpuType).
	gpuProductLabel = "nvidia.com/gpu.product"
)

// writableVolume names the emptyDir of a component's i-th writable path.
func writableVolume(i int) string { return "writable-" + strconv.Itoa(i) }

// writableVolumes are a component's writable paths as emptyDirs in
// memory, sized as aim.yaml says: like /tmp, counted in the memory limit.
// The kubelet makes an emptyDir world-writable, so uid 65534 writes it.
func writableVolumes(c spec.Component) []*corev1ac.VolumeApplyConfiguration {
	var out []*corev1ac.VolumeApplyConfiguration
	for i, w := range c.Writable {
		out = append(out, corev1ac.Volume().
			WithName(writableVolume(i)).
			WithEmptyDir(corev1ac.EmptyDirVolumeSource().
				WithMedium(corev1.StorageMediumMemory).
				WithSizeLimit(*resource.NewQuantity(int64(w.Size), resource.BinarySI))))
	}
	return out
}

func writableMounts(c spec.Component) []*corev1ac.VolumeMountApplyConfiguration {
	var out []*corev1ac.VolumeMountApplyConfiguration
	for i, w := range c.Writable {
		out = append(out, corev1ac.VolumeMount().WithName(writableVolume(i)).WithMountPath(w.Path))
	}
	return out
}

// componentNodeGroup is the node group of a component's pods: the
// solution's, else gpu for one that asks for a GPU, else the operator's
// default.
func componentNodeGroup(m *spec.Manifest, c spec.Component, o Options) string {
	if m.NodeGroup == "" && c.Resources.GPU > 0 {
		return gpuNodeGroup
	}
	return nodeGroup(m, o)
}

// gpuPlacement keeps a GPU component's pods to nodes of its GPU model
// and lets them onto nodes tainted for GPUs, as managed clusters taint
// them (nvidia.com/gpu:NoSchedule).
func gpuPlacement(pod *corev1ac.PodSpecApplyConfiguration, c spec.Component) {
	if c.Resources.GPU <= 0 {
		return
	}
	if t := c.Resources.GPUType; t != "" {
		pod.WithNodeSelector(map[string]string{gpuProductLabel: t})
	}
	pod.WithTolerations(corev1ac.Toleration().
		WithKey(string(gpuResource)).
		WithOperator(corev1.TolerationOpExists).
		WithEffect(corev1.TaintEffectNoSchedule))
}
