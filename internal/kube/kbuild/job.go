// Package kbuild renders the Kubernetes Job that builds one component's
// image in the cluster: BuildKit, rootless, in a Job of its own per build,
// on a build context fetched from the API, pushing to the registry by
// digest (docs/kubernetes.md, "Builds in the cluster").
//
// One Job per build, not a long-lived buildkitd: a build starts from
// nothing a previous build left (no shared daemon state another tenant's
// Dockerfile could have poisoned), and its limits and its end are the
// Job's. What makes an unchanged component rebuild in seconds is the cache
// each build exports to the registry beside the image and imports on the
// next build (--export-cache type=registry, mode=max).
package kbuild

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aimhub/aim/internal/kube/buildgate"
)

// Options are what every build of one installation shares: where builds
// run and push, with which image, within which limits.
type Options struct {
	// Namespace of the build Jobs (the chart's builds.namespace). Required.
	Namespace string
	// Image is BuildKit's (images/build.sh buildkit). Required.
	Image string
	// ServiceAccount the Jobs run as; the chart binds it to no Role, and
	// its token is not mounted. Required.
	ServiceAccount string
	// Registry is the host[:port] builds push to and pull through: the
	// API's registry gate (internal/kube/buildgate), which holds the
	// registry's credential; a build holds only a token of its own for it
	// (Secret). Required.
	Registry string
	// InsecureRegistry pushes over HTTP (the gate inside the cluster).
	InsecureRegistry bool
	// MirrorDockerHub resolves Docker Hub names in FROM lines through
	// Registry first (the chart's builds.mirrorDockerHub).
	MirrorDockerHub bool

	// CPU and Memory limit the build container; zero means 2 CPUs and
	// 4Gi. A build over its memory limit is OOM-killed and fails.
	CPU, Memory resource.Quantity
	// Storage limits the Job's scratch space (context and BuildKit's
	// state); zero means 10Gi.
	Storage resource.Quantity
	// Timeout is the Job's activeDeadlineSeconds; zero means 20 minutes.
	Timeout time.Duration
	// MaxContext caps the build context in bytes, as fetched; zero means
	// 100 MiB. The API refuses a larger upload before any Job is made; the
	// fetch enforces it again.
	MaxContext int64
	// TTL keeps a finished Job (and its logs) this long; zero means 1 hour.
	TTL time.Duration
}

// Build is one component's build.
type Build struct {
	// ID names the Job (aim-build-<ID>): lowercase letters, digits and
	// dashes, at most 40 characters.
	ID string
	// Solution and Component name the image:
	// <Registry>/<Solution>/<Component>.
	Solution, Component string
	// Dir is the component's directory inside the context, "" or "." for
	// its root; Dockerfile is the file's name there ("" means Dockerfile).
	Dir, Dockerfile string
	// ContextURL is where the Job fetches the context: an uncompressed tar
	// the API serves once, to the holder of the token in TokenSecret.
	ContextURL string
	// TokenSecret names the build's Secret in Namespace (Options.Secret):
	// the header that authorises the fetch, and the Docker config and
	// buildkitd.toml that give the push its gate token. The API makes it
	// for this build only, owned by the Job.
	TokenSecret string
}

// Labels of every build Job and its pod.
const (
	LabelBuild     = "aim.dev/build"
	LabelSolution  = "aim.dev/solution"
	LabelComponent = "aim.dev/component"
)

// The uid and gid of the user the BuildKit image has for rootless mode.
const buildUID = 1000

// Where the containers find what the Job mounts.
const (
	workspace   = "/workspace"
	contextDir  = workspace + "/context"
	contextTar  = workspace + "/context.tar"
	tokenDir    = "/var/run/aim-build/token"
	dockerDir   = "/var/run/aim-build/docker"
	buildkitDir = "/etc/buildkit"
	stateDir    = "/home/user/.local/share/buildkit"
	// XDG_RUNTIME_DIR and /run at once: buildkitd, uid 0 in rootlesskit's
	// namespace, also writes /run/buildkit.
	runtimeDir = "/run"

	metadataFile = "/tmp/metadata.json"
)

// WithDefaults is o with every zero limit at its default, as Job uses it:
// callers that report a limit (a build over its memory, say) read it here.
func (o Options) WithDefaults() Options {
	if o.CPU.IsZero() {
		o.CPU = resource.MustParse("2")
	}
	if o.Memory.IsZero() {
		o.Memory = resource.MustParse("4Gi")
	}
	if o.Storage.IsZero() {
		o.Storage = resource.MustParse("10Gi")
	}
	if o.Timeout == 0 {
		o.Timeout = 20 * time.Minute
	}
	if o.MaxContext == 0 {
		o.MaxContext = 100 << 20
	}
	if o.TTL == 0 {
		o.TTL = time.Hour
	}
	return o
}

func (o Options) validate() error {
	for _, f := range []struct{ name, value string }{
		{"Namespace", o.Namespace}, {"Image", o.Image}, {"ServiceAccount", o.ServiceAccount},
		{"Registry", o.Registry},
	} {
		if f.value == "" {
			return fmt.Errorf("kbuild: Options.%s is required", f.name)
		}
	}
	if o.Timeout < time.Second || o.MaxContext < 0 || o.TTL < 0 {
		return fmt.Errorf("kbuild: Options.Timeout (%s) must be at least 1s, MaxContext and TTL not negative", o.Timeout)
	}
	return nil
}

func (b Build) validate() error {
	if len(b.ID) > 40 || len(validation.IsDNS1123Label(b.ID)) > 0 {
		return fmt.Errorf("kbuild: build ID %q: use at most 40 lowercase letters, digits and dashes", b.ID)
	}
	for _, f := range []struct{ name, value string }{
		{"Solution", b.Solution}, {"Component", b.Component},
	} {
		if errs := validation.IsDNS1123Label(f.value); len(errs) > 0 {
			return fmt.Errorf("kbuild: build %s: %s %q: %s", b.ID, f.name, f.value, strings.Join(errs, "; "))
		}
	}
	if b.ContextURL == "" || b.TokenSecret == "" {
		return fmt.Errorf("kbuild: build %s: ContextURL and TokenSecret are required", b.ID)
	}
	if strings.HasPrefix(b.Dir, "/") || strings.Contains("/"+b.Dir+"/", "/../") || strings.Contains(b.Dockerfile, "/") {
		return fmt.Errorf("kbuild: build %s: Dir %q must be relative and inside the context, Dockerfile %q a file name", b.ID, b.Dir, b.Dockerfile)
	}
	return nil
}

// Repository is where the build pushes its image; the pod's termination
// message carries the digest (buildctl's metadata file).
func (o Options) Repository(b Build) string {
	return o.Registry + "/" + RepositoryPath(b.Solution, b.Component)
}

// RepositoryPath is where in the registry a solution's component is
// pushed: under aim/, three path components, so that no solution's name
// can claim a Docker Hub name (namespace/name, or library/name) that
// builds.mirrorDockerHub resolves in the same registry: a solution named
// library must not replace the python every other build starts FROM.
func RepositoryPath(solution, component string) string {
	return RepositoryRoot + solution + "/" + component
}

// RepositoryRoot is the path under which builds push, and only they.
const RepositoryRoot = "aim/"

// CacheRef is the tag under Repository that holds the build cache.
func (o Options) CacheRef(b Build) string {
	return o.Repository(b) + ":buildcache"
}

// Job renders the Job that builds b. It fails, saying which, on options or
// a build that are incomplete or unsafe.
func (o Options) Job(b Build) (*batchv1.Job, error) {
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := b.validate(); err != nil {
		return nil, err
	}
	labels := map[string]string{
		"app.kubernetes.io/name":      "aim",
		"app.kubernetes.io/component": "build",
		LabelBuild:                    b.ID,
		LabelSolution:                 b.Solution,
		LabelComponent:                b.Component,
	}
	deadline := int64(o.Timeout / time.Second)
	ttl := int32(o.TTL / time.Second)
	return &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "aim-build-" + b.ID,
			Namespace: o.Namespace,
			Labels:    labels,
		},
		Spec: batchv1.JobSpec{
			// A failed build is reported, not retried: its Dockerfile
			// would fail again, and the deploy waits on this one.
			BackoffLimit:            ptr(int32(0)),
			ActiveDeadlineSeconds:   &deadline,
			TTLSecondsAfterFinished: &ttl,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       o.podSpec(b),
			},
		},
	}, nil
}

func (o Options) podSpec(b Build) corev1.PodSpec {
	// Context and unpacked copy, plus a little for tar's own headers.
	wsLimit := resource.NewQuantity(2*o.MaxContext+(1<<20), resource.BinarySI)
	vols := []corev1.Volume{
		{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: wsLimit}}},
		{Name: "buildkitd", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &o.Storage}}},
		{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		// The same Secret, each container only its own keys: the fetch
		// the context's header, the build its gate token and buildkitd's
		// configuration.
		{Name: "token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: b.TokenSecret, DefaultMode: ptr(int32(0o440)),
			Items: []corev1.KeyToPath{{Key: SecretKeyHeader, Path: SecretKeyHeader}},
		}}},
		{Name: "docker", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: b.TokenSecret, DefaultMode: ptr(int32(0o440)),
			Items: []corev1.KeyToPath{{Key: SecretKeyDockerConfig, Path: "config.json"}},
		}}},
		{Name: "buildkitd-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: b.TokenSecret, DefaultMode: ptr(int32(0o440)),
			Items: []corev1.KeyToPath{{Key: SecretKeyBuildkitd, Path: "buildkitd.toml"}},
		}}},
	}
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           o.ServiceAccount,
		AutomountServiceAccountToken: ptr(false),
		EnableServiceLinks:           ptr(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr(true),
			RunAsUser:    ptr(int64(buildUID)),
			RunAsGroup:   ptr(int64(buildUID)),
			FSGroup:      ptr(int64(buildUID)),
		},
		InitContainers: []corev1.Container{o.fetchContainer(b), o.unpackContainer()},
		Containers:     []corev1.Container{o.buildContainer(b)},
		Volumes:        vols,
	}
}

// restricted is Pod Security "restricted" for the steps that run no
// Dockerfile: fetching and unpacking the context.
func restricted() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

var smallResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
	Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
}

func (o Options) fetchContainer(b Build) corev1.Container {
	return corev1.Container{
		Name:  "fetch",
		Image: o.Image,
		// --max-filesize refuses a larger context before writing it (the
		// API sends Content-Length); the header file keeps the token out
		// of the pod's spec and of argv.
		Command: []string{"curl", "--fail", "--silent", "--show-error", "--location",
			"--max-filesize", strconv.FormatInt(o.MaxContext, 10),
			"--max-time", "300",
			"--header", "@" + tokenDir + "/header",
			"--output", contextTar, b.ContextURL},
		Resources:       smallResources,
		SecurityContext: restricted(),
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workspace", MountPath: workspace},
			{Name: "token", MountPath: tokenDir, ReadOnly: true},
		},
	}
}

func (o Options) unpackContainer() corev1.Container {
	return corev1.Container{
		Name:  "unpack",
		Image: o.Image,
		Command: []string{"sh", "-c",
			`mkdir "$1" && tar -x --no-same-owner --no-same-permissions -f "$2" -C "$1" && rm "$2"`,
			"unpack", contextDir, contextTar},
		Resources:       smallResources,
		SecurityContext: restricted(),
		VolumeMounts:    []corev1.VolumeMount{{Name: "workspace", MountPath: workspace}},
	}
}

func (o Options) buildContainer(b Build) corev1.Container {
	dir := contextDir
	if b.Dir != "" && b.Dir != "." {
		dir = contextDir + "/" + strings.Trim(b.Dir, "/")
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	insecure := ""
	if o.InsecureRegistry {
		insecure = ",registry.insecure=true"
	}
	args := []string{"build",
		"--progress=plain",
		"--frontend=dockerfile.v0",
		"--local=context=" + dir,
		"--local=dockerfile=" + dir,
		"--opt=filename=" + dockerfile,
		"--output=type=image,name=" + o.Repository(b) + ",push=true" + insecure,
		"--import-cache=type=registry,ref=" + o.CacheRef(b) + insecure,
		"--export-cache=type=registry,ref=" + o.CacheRef(b) + ",mode=max,ignore-error=true" + insecure,
		"--metadata-file=" + metadataFile,
	}
	// --root: under rootlesskit buildkitd is uid 0 in its namespace and
	// would take /var/lib/buildkit, on the read-only root.
	flags := "--oci-worker-no-process-sandbox --root=" + stateDir + " --config=" + buildkitDir + "/buildkitd.toml"
	mounts := []corev1.VolumeMount{
		{Name: "workspace", MountPath: workspace, ReadOnly: true},
		{Name: "buildkitd", MountPath: stateDir},
		{Name: "tmp", MountPath: "/tmp"},
		{Name: "run", MountPath: runtimeDir},
		{Name: "docker", MountPath: dockerDir, ReadOnly: true},
		{Name: "buildkitd-config", MountPath: buildkitDir, ReadOnly: true},
	}
	return corev1.Container{
		Name:  "build",
		Image: o.Image,
		// The digest and descriptor become the pod's termination message.
		// buildctl writes its metadata file by a rename in the file's
		// directory, which /dev is not writable for; so it is copied.
		Command: []string{"sh", "-c",
			`buildctl-daemonless.sh "$@" && cat ` + metadataFile + ` >/dev/termination-log`, "build"},
		Args: args,
		Env: []corev1.EnvVar{
			// No process sandbox: a new PID namespace would need /proc
			// unmasked (docs/security.md).
			{Name: "BUILDKITD_FLAGS", Value: flags},
			{Name: "DOCKER_CONFIG", Value: dockerDir},
			{Name: "XDG_RUNTIME_DIR", Value: runtimeDir},
			{Name: "HOME", Value: "/home/user"},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: o.CPU, corev1.ResourceMemory: o.Memory},
		},
		VolumeMounts: mounts,
		// A failed build's message is its log's last lines.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext:          rootless(),
	}
}

// rootless is the least rootless BuildKit ran with on Docker
// (test/buildinfra): a non-root user, but seccomp and AppArmor unconfined
// (it makes a user namespace and mounts in it), privilege escalation
// allowed and CAP_SYS_ADMIN in the bounding set, without which the
// set-uid newuidmap's write of the subordinate ids' map is refused; the
// build's own processes hold no capability. docs/security.md says more.
func rootless() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr(true),
		AllowPrivilegeEscalation: ptr(true),
		Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}},
		ReadOnlyRootFilesystem:   ptr(true),
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
		AppArmorProfile:          &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
	}
}

// The keys of a build's Secret.
const (
	SecretKeyHeader       = "header"
	SecretKeyDockerConfig = "config.json"
	SecretKeyBuildkitd    = "buildkitd.toml"
)

// Secret renders b's Secret (TokenSecret): the header that fetches the
// context with contextToken, and a Docker config that gives buildctl
// only gateToken, as the gate's user "build", for Registry (the gate),
// with buildkitd's configuration for it. The caller owns it by the Job.
func (o Options) Secret(b Build, labels map[string]string, contextToken, gateToken string) *corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(buildgate.User + ":" + gateToken))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{o.Registry: map[string]string{"auth": auth}}})
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: b.TokenSecret, Namespace: o.Namespace, Labels: labels},
		StringData: map[string]string{
			SecretKeyHeader:       "Authorization: Bearer " + contextToken,
			SecretKeyDockerConfig: string(cfg),
			SecretKeyBuildkitd:    o.BuildkitdConfig(),
		},
	}
}

// BuildkitdConfig is buildkitd.toml: the OCI worker, the gate over HTTP
// when InsecureRegistry, and Docker Hub mirrored through it when
// MirrorDockerHub.
func (o Options) BuildkitdConfig() string {
	var s strings.Builder
	s.WriteString("[worker.oci]\n  enabled = true\n[worker.containerd]\n  enabled = false\n")
	if o.InsecureRegistry {
		fmt.Fprintf(&s, "[registry.%q]\n  http = true\n", o.Registry)
	}
	if o.MirrorDockerHub {
		fmt.Fprintf(&s, "[registry.\"docker.io\"]\n  mirrors = [%q]\n", o.Registry)
	}
	return s.String()
}

func ptr[T any](v T) *T { return &v }
