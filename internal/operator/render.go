package operator

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/spec"
)

const (
	// fieldManager names the operator in managedFields.
	fieldManager = "aim-operator"
	// replicasManager co-owns spec.replicas from a Deployment's creation
	// on, so that the operator's later applies, which leave replicas out,
	// do not reset it (see applyDeployment).
	replicasManager = "aim-operator-replicas"

	labelManagedBy = "app.kubernetes.io/managed-by"
	// nobody is the uid and gid a component runs as unless runAsRoot: the
	// Docker runtime's choice for root images. Kubernetes cannot see an
	// image's user before it runs the pod, so every image gets it.
	nobody = 65534
	// tmpSize bounds the in-memory /tmp, as the Docker runtime's tmpfs.
	tmpSize = "64Mi"
	// stopGrace is how long a component has between SIGTERM and SIGKILL,
	// as on Docker (the packaging standard's sigterm rule).
	stopGrace = 10
	// progressDeadline is how long a rollout may go without progress
	// before the solution is failed. Generous next to the Docker
	// runtime's 60 s start timeout: a node may first pull the image.
	progressDeadline = 300
)

// Render is every object of a solution, as the reconciler applies it:
// its volumes' claims (created once, never owned: see renderClaims), per
// component a Service and a Deployment, then the NetworkPolicies.
// clusterIPs maps component names to their Services' cluster IPs (siblings
// find one another through them); replicas is what new Deployments start
// with. It is pure, for golden tests.
func Render(sol *v1alpha1.Solution, m *spec.Manifest, o Options, clusterIPs map[string]string, replicas int32) []runtime.ApplyConfiguration {
	o = o.withDefaults()
	var out []runtime.ApplyConfiguration
	for _, pvc := range renderClaims(sol, m) {
		out = append(out, pvc)
	}
	for _, c := range m.Components {
		out = append(out, renderService(sol, c))
	}
	for _, c := range m.Components {
		d := renderDeployment(sol, m, c, o, clusterIPs)
		d.Spec.WithReplicas(replicas)
		out = append(out, d)
	}
	for _, np := range renderNetworkPolicies(sol, m.Egress, o) {
		out = append(out, np)
	}
	return out
}

// objectName is the name of a component's Deployment and Service:
// <solution>-<component>, unless that is no DNS-1035 label (a Service's
// name must be one: at most 63 characters, starting with a letter); then
// a prefix of it with a hash, which stays unique.
func objectName(solution, component string) string {
	n := solution + "-" + component
	if len(n) <= 63 && n[0] >= 'a' && n[0] <= 'z' {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	h := hex.EncodeToString(sum[:4])
	p := n
	if len(p) > 63-len("aim--")-len(h) {
		p = p[:63-len("aim--")-len(h)]
	}
	for len(p) > 0 && p[len(p)-1] == '-' {
		p = p[:len(p)-1]
	}
	return "aim-" + p + "-" + h
}

func solutionLabels(sol string) map[string]string {
	return map[string]string{v1alpha1.LabelSolution: sol, labelManagedBy: fieldManager}
}

func componentLabels(sol string, c spec.Component) map[string]string {
	l := solutionLabels(sol)
	l[v1alpha1.LabelComponent] = c.Name
	l[v1alpha1.LabelPublic] = strconv.FormatBool(c.IsPublic())
	return l
}

// selector picks a component's pods; it leaves out aim.dev/public, which
// may change while a Deployment's selector may not.
func selector(sol string, c spec.Component) map[string]string {
	return map[string]string{v1alpha1.LabelSolution: sol, v1alpha1.LabelComponent: c.Name}
}

func ownerRef(sol *v1alpha1.Solution) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(v1alpha1.GroupVersion.String()).
		WithKind("Solution").
		WithName(sol.Name).
		WithUID(sol.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

func renderService(sol *v1alpha1.Solution, c spec.Component) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(objectName(sol.Name, c.Name), sol.Namespace).
		WithLabels(componentLabels(sol.Name, c)).
		WithOwnerReferences(ownerRef(sol)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selector(sol.Name, c)).
			WithPorts(corev1ac.ServicePort().
				WithName("http").
				WithProtocol(corev1.ProtocolTCP).
				WithPort(spec.Port).
				WithTargetPort(intstr.FromString("http"))))
}

// renderDeployment leaves spec.replicas unset: it is set when the
// Deployment is created and when the solution sleeps, and otherwise
// belongs to whoever scales it (the gateway wakes a solution so).
func renderDeployment(sol *v1alpha1.Solution, m *spec.Manifest, c spec.Component, o Options, clusterIPs map[string]string) *appsv1ac.DeploymentApplyConfiguration {
	podLabels := componentLabels(sol.Name, c)
	annotations := map[string]string{"kubectl.kubernetes.io/default-container": c.Name}
	if o.Mesh {
		annotations["linkerd.io/inject"] = "enabled"
	}
	if h := secretsHash(sol, c); h != "" {
		annotations[annotationSecretsHash] = h
	}
	ctr := container(sol.Name, c, o.Defaults)
	if pullAlways(sol, c.Name) {
		ctr.WithImagePullPolicy(corev1.PullAlways)
	}
	pod := corev1ac.PodSpec().
		WithAutomountServiceAccountToken(false).
		// Service links would put every Service of the namespace, other
		// solutions' too, into the environment.
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(stopGrace).
		WithSecurityContext(podSecurity(c)).
		WithContainers(ctr).
		WithVolumes(corev1ac.Volume().
			WithName("tmp").
			// In memory and counted against the memory limit, as the
			// Docker runtime's tmpfs.
			WithEmptyDir(corev1ac.EmptyDirVolumeSource().
				WithMedium(corev1.StorageMediumMemory).
				WithSizeLimit(resource.MustParse(tmpSize)))).
		WithVolumes(writableVolumes(c)...).
		WithAffinity(corev1ac.Affinity().WithPodAffinity(corev1ac.PodAffinity().
			// One solution's components talk to one another; on one node
			// they do so without crossing the network.
			WithPreferredDuringSchedulingIgnoredDuringExecution(corev1ac.WeightedPodAffinityTerm().
				WithWeight(100).
				WithPodAffinityTerm(corev1ac.PodAffinityTerm().
					WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{v1alpha1.LabelSolution: sol.Name})).
					WithTopologyKey(corev1.LabelHostname)))))
	// Siblings reach one another at http://<component>:8080, as on
	// Docker's per-solution network. Services are named per solution
	// (<solution>-<component>), so that solutions can share a namespace;
	// /etc/hosts maps the bare component names to their cluster IPs.
	for _, s := range m.Components {
		if ip := clusterIPs[s.Name]; ip != "" {
			pod.WithHostAliases(corev1ac.HostAlias().WithIP(ip).WithHostnames(s.Name))
		}
	}
	if g := componentNodeGroup(m, c, o); g != "" {
		pod.WithNodeSelector(map[string]string{v1alpha1.LabelNodeGroup: g}).
			WithTolerations(corev1ac.Toleration().
				WithKey(v1alpha1.LabelNodeGroup).
				WithOperator(corev1.TolerationOpEqual).
				WithValue(g).
				WithEffect(corev1.TaintEffectNoSchedule))
	}
	gpuPlacement(pod, c)
	for _, name := range sol.Spec.ImagePullSecrets {
		pod.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(name))
	}
	if o.PullSecret != "" {
		pod.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(o.PullSecret))
	}
	strategy := appsv1ac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType)
	if withVolumes(sol.Name, c, pod) {
		// A read-write claim has one writer at a time: the old pod
		// goes before the new one starts (it is ReadWriteOnce, and two
		// writers would corrupt what most programs keep there).
		strategy = appsv1ac.DeploymentStrategy().WithType(appsv1.RecreateDeploymentStrategyType)
	}
	return appsv1ac.Deployment(objectName(sol.Name, c.Name), sol.Namespace).
		WithLabels(componentLabels(sol.Name, c)).
		WithOwnerReferences(ownerRef(sol)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selector(sol.Name, c))).
			WithRevisionHistoryLimit(2).
			WithProgressDeadlineSeconds(progressDeadline).
			// The default rolling update (25 % unavailable, rounded down)
			// starts a new replica before it stops an old one, so an
			// update of a one-replica component keeps serving.
			WithStrategy(strategy).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(podLabels).
				WithAnnotations(annotations).
				WithSpec(pod)))
}

// pullAlways tells whether the spec asks the kubelet to pull component
// comp's image for every pod (v1alpha1.Component.PullAlways).
func pullAlways(sol *v1alpha1.Solution, comp string) bool {
	for _, c := range sol.Spec.Components {
		if c.Name == comp {
			return c.PullAlways
		}
	}
	return false
}

// annotationSecretsHash is on the pod template of a component that takes
// secrets: a hash of when each was set, so that setting one again rolls
// the component's pods, which read a Secret only as they start.
const annotationSecretsHash = "aim.dev/secrets-hash"

// secretsHash is the hash of the versions of the secrets c uses, or ""
// when it uses none.
func secretsHash(sol *v1alpha1.Solution, c spec.Component) string {
	var names []string
	for _, k := range spec.EnvKeys(c.Env) {
		if s := c.Env[k].Secret; s != "" && !slices.Contains(names, s) {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n + "=" + sol.Spec.SecretVersions[n] + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func nodeGroup(m *spec.Manifest, o Options) string {
	if m.NodeGroup != "" {
		return m.NodeGroup
	}
	return o.DefaultNodeGroup
}

// podSecurity is Pod Security's "restricted" profile, unless the
// component needs root; then only its seccomp part (a namespace that runs
// such components can enforce "baseline" only).
func podSecurity(c spec.Component) *corev1ac.PodSecurityContextApplyConfiguration {
	sc := corev1ac.PodSecurityContext().
		WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))
	if !c.RunAsRoot {
		sc.WithRunAsNonRoot(true).WithRunAsUser(nobody).WithRunAsGroup(nobody)
	}
	return sc
}

// container mirrors the Docker runtime's Confined: the same environment
// (with HOME=/tmp for uid 65534 unless the env sets HOME),
// a read-only root filesystem with a writable /tmp, no capabilities, no
// privilege escalation, and the CPU and memory of the manifest or def.
// Kubernetes has no per-pod pids limit (the kubelet's podPidsLimit is
// one value for a node), so resources.pids is not applied.
func container(sol string, c spec.Component, def spec.Defaults) *corev1ac.ContainerApplyConfiguration {
	res := c.Resources.Or(def)
	// Requests equal limits: memory cannot be reclaimed from a process,
	// and a solution's CPU is what its provider asked for.
	amounts := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(res.CPU), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(res.Memory), resource.BinarySI),
	}
	env := []*corev1ac.EnvVarApplyConfiguration{
		corev1ac.EnvVar().WithName("PORT").WithValue(strconv.Itoa(spec.Port)),
		corev1ac.EnvVar().WithName("AIM_SOLUTION").WithValue(sol),
		corev1ac.EnvVar().WithName("AIM_COMPONENT").WithValue(c.Name),
	}
	if _, set := c.Env["HOME"]; !set && !c.RunAsRoot {
		// uid 65534's home is /nonexistent (or "/" in an image without
		// /etc/passwd), which programs that keep files under HOME fail
		// on; the Docker runtime sets the same. The operator cannot see an
		// image's ENV, so an image's own HOME gives way too: the component's
		// env keeps one.
		env = append(env, corev1ac.EnvVar().WithName("HOME").WithValue("/tmp"))
	}
	for _, k := range spec.EnvKeys(c.Env) {
		v := c.Env[k]
		if v.Secret == "" {
			env = append(env, corev1ac.EnvVar().WithName(k).WithValue(v.Value))
			continue
		}
		// The value stays in the Secret, which the kubelet reads; the
		// operator never does.
		env = append(env, corev1ac.EnvVar().WithName(k).WithValueFrom(corev1ac.EnvVarSource().
			WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(v1alpha1.SecretsName(sol)).WithKey(v.Secret))))
	}
	limits := amounts
	if c.Resources.GPU > 0 {
		// An extended resource is a limit; its request defaults to it.
		limits = maps.Clone(amounts)
		limits[gpuResource] = *resource.NewQuantity(c.Resources.GPU, resource.DecimalSI)
	}
	return corev1ac.Container().
		WithName(c.Name).
		WithImage(c.Image).
		WithEnv(env...).
		WithPorts(corev1ac.ContainerPort().WithName("http").WithContainerPort(spec.Port).WithProtocol(corev1.ProtocolTCP)).
		WithResources(corev1ac.ResourceRequirements().WithRequests(amounts).WithLimits(limits)).
		WithReadinessProbe(readinessProbe(c)).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL"))).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("tmp").WithMountPath("/tmp")).
		WithVolumeMounts(writableMounts(c)...)
}

// readinessProbe is the component's ready.path as an HTTP probe, as the
// Docker runtime judges it (the kubelet also takes a 3xx). Without one, a
// TCP probe, not HTTP: a public component that serves /api only may
// answer 404 at /, and a private one need not serve a page. Every second,
// so that a woken solution is routed to at once.
func readinessProbe(c spec.Component) *corev1ac.ProbeApplyConfiguration {
	p := corev1ac.Probe().WithPeriodSeconds(1).WithFailureThreshold(3)
	if c.Ready.Path != "" {
		return p.WithHTTPGet(corev1ac.HTTPGetAction().WithPath(c.Ready.Path).WithPort(intstr.FromString("http")))
	}
	return p.WithTCPSocket(corev1ac.TCPSocketAction().WithPort(intstr.FromString("http")))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
