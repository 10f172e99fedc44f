package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations aim puts on, or reads from, Kubernetes objects.
const (
	// LabelSolution names the solution an object belongs to.
	LabelSolution = "aim.dev/solution"
	// LabelComponent names the component an object runs.
	LabelComponent = "aim.dev/component"
	// LabelPublic is "true" on the objects of components the gateway
	// routes to, "false" on the others.
	LabelPublic = "aim.dev/public"
	// LabelVolume names the volume a PersistentVolumeClaim holds; its
	// AnnotationOwner says whose solution made it.
	LabelVolume = "aim.dev/volume"
	// LabelNodeGroup is the node label a node group's nodes carry, and
	// the key of the taint that keeps other pods off them.
	LabelNodeGroup = "aim.dev/node-group"
	// AnnotationLastActive is written on a Solution by the gateway when
	// it sees requests for it or holds open connections to it: an
	// RFC 3339 time (RFC3339Nano, UTC). The operator puts the solution to
	// sleep once it is older than the idle timeout.
	AnnotationLastActive = "aim.dev/last-active"
	// AnnotationOwner is where aim's API kept a Solution's owner before
	// spec.owner: read when spec.owner is empty (OwnerOf), never written
	// on a Solution. On a claim it is the owner of the solution that
	// made it, for whom it is kept once that solution is removed.
	AnnotationOwner = "aim.dev/owner"
	// AnnotationDeploy is written on a Solution by aim's API with each
	// spec it writes, in the same update: a JSON DeployNote saying who
	// deployed it and whether it is a rollback. The operator copies it
	// into the generation it records when its generation matches.
	AnnotationDeploy = "aim.dev/deploy"
)

// DeployNote is what aim's API says of a spec it writes
// (AnnotationDeploy).
type DeployNote struct {
	// Generation is the Solution's metadata.generation the note is for:
	// a later change by someone else (kubectl edit) does not inherit it.
	Generation int64 `json:"generation"`
	// By is who deployed: a token's name, a person.
	By string `json:"by,omitempty"`
	// RollbackOf is the generation a rollback serves again.
	RollbackOf int64 `json:"rollbackOf,omitempty"`
}

// Condition types of a Solution's status.
const (
	// ConditionReady is true when every component has all its replicas
	// available.
	ConditionReady = "Ready"
	// ConditionSleeping is true while every component is scaled to zero.
	ConditionSleeping = "Sleeping"
	// ConditionFailed is true when the solution cannot be served as
	// specified; its reason and message say what is wrong and where.
	ConditionFailed = "Failed"
)

// States of a Solution, its status.state: one word for `kubectl get`.
const (
	StateDeploying = "deploying"
	StateRunning   = "running"
	StateSleeping  = "sleeping"
	StateFailed    = "failed"
)

// Solution is an AI solution served at <name>.<domain>: one or more
// container images that serve HTTP on port 8080, as its aim.yaml
// describes it. The name is the subdomain, so it is a DNS label.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sol;sols,categories=aim
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`,description="Ready replicas, all components together"
// +kubebuilder:printcolumn:name="Visibility",type=string,JSONPath=`.spec.visibility`,description="public (when empty), unlisted or private"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Failed")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (lower-case letters, digits and '-', at most 63): it is the solution's subdomain"
type Solution struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SolutionSpec   `json:"spec"`
	Status SolutionStatus `json:"status,omitempty"`
}

// SolutionList is a list of Solutions.
//
// +kubebuilder:object:root=true
type SolutionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Solution `json:"items"`
}

// SolutionSpec is aim.yaml without its name (the object's name) and with
// images instead of build directories: a cluster runs images that a
// registry holds, and with its owner, which aim keeps beside the
// manifest. A thumbnail, a file beside aim.yaml, is not carried: the
// cluster has no copy of it. ToManifest and FromManifest convert it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.access) || (has(self.visibility) && self.visibility == 'private')",message="only a private solution has an access list; add visibility: private",fieldPath=".access"
// +kubebuilder:validation:XValidation:rule="!has(self.visibility) || self.visibility != 'private' || has(self.access)",message="a private solution needs an access list with at least one of emails, domains or groups (its owner and the admins are always admitted)",fieldPath=".access"
type SolutionSpec struct {
	// Title is the human name shown in the catalog. Empty means the name.
	// +kubebuilder:validation:MaxLength=100
	// +optional
	Title string `json:"title,omitempty"`
	// +kubebuilder:validation:MaxLength=2000
	// +optional
	Description string `json:"description,omitempty"`
	// +optional
	Provider Provider `json:"provider,omitempty,omitzero"`
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=32
	// +optional
	Tags []string `json:"tags,omitempty"`
	// Phases are the product-creation phases the solution helps with (the
	// paper's Figure 1), by which visitors filter the catalog.
	// +kubebuilder:validation:MaxItems=4
	// +kubebuilder:validation:items:Enum=strategic-product-planning;product-development;service-development;production-system-development
	// +optional
	Phases []string `json:"phases,omitempty"`
	// Components are the containers of the solution.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=map
	// +listMapKey=name
	Components []Component `json:"components"`
	// +optional
	Scaling Scaling `json:"scaling,omitempty,omitzero"`
	// +optional
	Limits Limits `json:"limits,omitempty,omitzero"`
	// NodeGroup names the group of nodes the solution runs on: its pods
	// select nodes labelled aim.dev/node-group=<group> and tolerate the
	// taint aim.dev/node-group=<group>:NoSchedule. Empty means the
	// operator's default group.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	NodeGroup string `json:"nodeGroup,omitempty"`
	// Owner names the aim provider the solution belongs to, who may
	// manage it through aim's API and always reaches it when it is
	// private. Empty means the platform's admins. aim's API sets it on a
	// solution's first deploy and keeps it; whoever may write Solutions
	// in the cluster may set it to anything, as aim's roles do not bind
	// the cluster's own users.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Owner string `json:"owner,omitempty"`
	// Visibility says who finds and reaches the solution: public (listed
	// and open to everyone), unlisted (open to everyone who has its URL,
	// not in the catalog) or private (listed for and open to Access only,
	// besides its owner and the admins). Empty means public.
	// +kubebuilder:validation:Enum=public;unlisted;private
	// +optional
	Visibility string `json:"visibility,omitempty"`
	// Access names who may see and use a private solution; a private
	// solution needs it, the others may not have it.
	// +optional
	Access *Access `json:"access,omitempty"`
	// SecretVersions says when each secret the components use was last
	// set, as aim's API writes it with the Secret (SecretsName): a change
	// restarts the pods of the components that use that secret, through
	// a hash of their secrets' versions on the pod template. Never a
	// value.
	// +kubebuilder:validation:MaxProperties=128
	// +optional
	SecretVersions map[string]string `json:"secretVersions,omitempty"`
	// ImagePullSecrets name kubernetes.io/dockerconfigjson Secrets in the
	// Solution's namespace that the operator puts on every pod as
	// imagePullSecrets. aim's API writes one, PullSecretName, holding the
	// owner's registry logins (aim registry login) for the registries
	// the components' images name, and no one else's.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
	// Egress says what the solution's pods may reach besides their own
	// solution and the cluster's DNS: default (empty) lets them out to
	// the internet but not to private, link-local (metadata) or loopback
	// ranges, nor to the addresses the operator is told are the
	// cluster's; none lets them reach nothing else.
	// +kubebuilder:validation:Enum=default;none
	// +optional
	Egress string `json:"egress,omitempty"`
}

// Access lists the people a private solution is open to, as the OpenID
// provider names them: any one match admits. aim.yaml's rules check each
// entry (ToManifest); the schema bounds their sizes.
//
// +kubebuilder:validation:MinProperties=1
type Access struct {
	// Emails are addresses, compared case-insensitively.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=254
	// +optional
	Emails []string `json:"emails,omitempty"`
	// Domains admit every address at that domain (not its subdomains)
	// that the OpenID provider verified, e.g. example.com.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +optional
	Domains []string `json:"domains,omitempty"`
	// Groups admit members of these OpenID groups (the groups claim).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +optional
	Groups []string `json:"groups,omitempty"`
}

// Provider says who offers the solution and how to reach them.
type Provider struct {
	// +kubebuilder:validation:MaxLength=200
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:validation:MaxLength=500
	// +optional
	Contact string `json:"contact,omitempty"`
}

// Component is one container image of a solution; it serves HTTP on
// port 8080.
type Component struct {
	// Name is a DNS label, unique in the solution. Siblings reach the
	// component at http://<name>:8080.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Image is the reference of an image the cluster can pull.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^\S+$`
	Image string `json:"image"`
	// PullAlways makes the kubelet pull the image for every pod
	// (imagePullPolicy: Always), so that the registry checks this
	// solution's pull secret each time and a node's cache never hands a
	// private image, pulled for one tenant, to another. aim's API sets it
	// for images of registries someone has a login to. Unset means the
	// Kubernetes default (IfNotPresent for a tagged image).
	// +optional
	PullAlways bool `json:"pullAlways,omitempty"`
	// Public components are reachable through the gateway. Unset means
	// true for a solution's only component and false otherwise.
	// +optional
	Public *bool `json:"public,omitempty"`
	// Paths are the path prefixes the gateway routes to a public
	// component; not stripped. Empty means "/" for the first public
	// component; later public components must name theirs.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:Pattern=`^/[^?# \t]*$`
	// +optional
	Paths []string `json:"paths,omitempty"`
	// Env is the component's environment, besides PORT, AIM_SOLUTION and
	// AIM_COMPONENT which aim sets.
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="env names are letters, digits and '_', not starting with a digit"
	// +optional
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv names the environment variables taken from the solution's
	// secrets (aim secret set), each to its key in the Secret
	// aim-secrets-<solution> the API keeps beside the Solution; the
	// manifest's `KEY: {secret: NAME}`. The operator checks the names as
	// aim.yaml's (ToManifest); a CEL rule on the values would exceed the
	// schema's cost budget.
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="env names are letters, digits and '_', not starting with a digit"
	// +optional
	SecretEnv map[string]string `json:"secretEnv,omitempty"`
	// +optional
	Resources Resources `json:"resources,omitempty,omitzero"`
	// RunAsRoot lets a component whose image needs root keep its user.
	// Otherwise it runs as uid 65534, which Pod Security's "restricted"
	// profile requires.
	// +optional
	RunAsRoot bool `json:"runAsRoot,omitempty"`
	// Ready says when the component is ready to serve: its pods'
	// readinessProbe, and what the gateway waits for when it wakes the
	// solution. Unset means a TCP connection to 8080 for the kubelet and
	// GET / below 500 for the gateway's wake.
	// +optional
	Ready Ready `json:"ready,omitempty,omitzero"`
	// Writable are directories the component may write besides /tmp:
	// each an emptyDir in memory, counted in the memory limit; the root
	// filesystem stays read-only.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=path
	// +optional
	Writable []Writable `json:"writable,omitempty"`
	// Volumes are persistent directories: each a PersistentVolumeClaim
	// of the solution, which outlives sleeps, updates and the Solution
	// itself (aim rm --delete-data deletes it).
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Volumes []Volume `json:"volumes,omitempty"`
}

// Writable is a directory a component may write, as aim.yaml's
// writable entry: a clean absolute path, not /, not under /tmp, /proc,
// /sys or /dev, apart from the others (ToManifest checks).
type Writable struct {
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// Size bounds what the directory holds (the emptyDir's sizeLimit).
	// Unset means 64Mi.
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`
}

// Volume is a component's persistent directory (aim.yaml's volumes).
type Volume struct {
	// Name is a DNS label; the same name in another component of the
	// solution is the same claim.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// Path is the absolute directory it is mounted at.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/`
	Path string `json:"path"`
	// Size is what the claim requests, e.g. 2Gi.
	Size resource.Quantity `json:"size"`
	// ReadOnly mounts it read-only.
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
}

// Ready is how a component is judged ready to serve.
type Ready struct {
	// Path is a clean absolute path, without query, that a GET on port
	// 8080 must answer with 2xx once the component can serve, e.g.
	// /-/ready. The kubelet also counts a redirect as ready, so it should
	// not redirect.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:Pattern=`^/[^?# \t]*$`
	Path string `json:"path"`
}

// Resources bound one replica of a component. Unset fields take the
// operator's defaults (1 CPU, 512Mi).
type Resources struct {
	// CPU is the replica's CPU limit and request, e.g. 500m or 0.5.
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`
	// Memory is the replica's memory limit and request, e.g. 256Mi. It
	// includes /tmp, which is held in memory.
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
	// Pids is kept for aim.yaml's sake: Kubernetes cannot limit processes
	// per pod (the kubelet's podPidsLimit is one value per node), so the
	// operator does not act on it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Pids int64 `json:"pids,omitempty"`
	// GPU is the number of NVIDIA GPUs (nvidia.com/gpu) of the replica.
	// Its pods go to the node group gpu unless the solution names one.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16
	// +optional
	GPU int64 `json:"gpu,omitempty"`
	// GPUType selects nodes whose nvidia.com/gpu.product label (NVIDIA's
	// GPU feature discovery) has this value, e.g. NVIDIA-L4. Only with
	// GPU.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	GPUType string `json:"gpuType,omitempty"`
}

// Scaling says when a solution sleeps and how far it grows.
//
// +kubebuilder:validation:XValidation:rule="!has(self.max) || self.max == 0 || !has(self.min) || self.min <= self.max",message="min is above max",fieldPath=".min"
type Scaling struct {
	// Idle is how long without requests before the solution sleeps.
	// Unset means the operator's --idle-timeout.
	// +optional
	Idle *metav1.Duration `json:"idle,omitempty"`
	// Min replicas of each component; above 0 the solution never sleeps.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Min int32 `json:"min,omitempty"`
	// Max replicas of each component. Zero means 1.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Max int32 `json:"max,omitempty"`
	// Concurrency is the in-flight requests per replica above which a
	// replica is added. Zero means the platform's default.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Concurrency int32 `json:"concurrency,omitempty"`
	// Hold asks the gateway to hold browsers too, instead of showing them
	// a "starting" page, while the solution wakes.
	// +optional
	Hold bool `json:"hold,omitempty"`
}

// Limits protect a solution at the gateway. Unset fields take the
// platform's defaults.
type Limits struct {
	// RPS is requests per second per client IP, e.g. 10 or 500m (one
	// request every two seconds).
	// +optional
	RPS *resource.Quantity `json:"rps,omitempty"`
	// Burst is how many requests above RPS a client may send at once.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Burst int32 `json:"burst,omitempty"`
	// Body caps a request body, e.g. 10Mi.
	// +optional
	Body *resource.Quantity `json:"body,omitempty"`
}

// SolutionStatus is what the operator observed of a solution.
type SolutionStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// State is one word: deploying, running, sleeping or failed.
	// +kubebuilder:validation:Enum=deploying;running;sleeping;failed
	// +optional
	State string `json:"state,omitempty"`
	// URL is where the solution is served.
	// +optional
	URL string `json:"url,omitempty"`
	// Replicas counts the ready replicas of all components together.
	// +optional
	Replicas int32 `json:"replicas"`
	// Components report each component's replicas.
	// +listType=map
	// +listMapKey=name
	// +optional
	Components []ComponentStatus `json:"components,omitempty"`
	// Conditions are Ready, Sleeping and Failed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Generations are the solution's recent generations, newest first:
	// each distinct spec it served or tried to, which the operator keeps
	// as a ControllerRevision (for aim history and aim rollback).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Generations []GenerationStatus `json:"generations,omitempty"`
}

// Outcomes of a generation.
const (
	OutcomeDeploying = "deploying"
	// OutcomeServing: it serves now.
	OutcomeServing = "serving"
	// OutcomeReplaced: it served; a later one took over.
	OutcomeReplaced = "replaced"
	// OutcomeFailed: it never served.
	OutcomeFailed = "failed"
)

// GenerationStatus is one generation of a solution: a spec it was given,
// numbered in order (its ControllerRevision's revision), what it ran and
// what became of it.
type GenerationStatus struct {
	Generation int64 `json:"generation"`
	// Time is when the operator first saw the spec.
	Time metav1.Time `json:"time"`
	// Images are each component's image reference.
	// +optional
	Images map[string]string `json:"images,omitempty"`
	// Digests are each component's image as the nodes ran it (the pods'
	// imageID), read when it first served.
	// +optional
	Digests map[string]string `json:"digests,omitempty"`
	// Outcome is deploying, serving, replaced (it served, then a later
	// one took over) or failed (it never served).
	// +kubebuilder:validation:Enum=deploying;serving;replaced;failed
	Outcome string `json:"outcome"`
	// Reason says why it failed.
	// +optional
	Reason string `json:"reason,omitempty"`
	// DeployedBy is who deployed it through aim's API.
	// +optional
	DeployedBy string `json:"deployedBy,omitempty"`
	// RollbackOf is the generation it serves again, for a rollback.
	// +optional
	RollbackOf int64 `json:"rollbackOf,omitempty"`
}

// ComponentStatus is one component's replicas.
type ComponentStatus struct {
	Name string `json:"name"`
	// Replicas is the number of replicas asked for (0 while sleeping).
	Replicas int32 `json:"replicas"`
	// ReadyReplicas is the number that answer.
	ReadyReplicas int32 `json:"readyReplicas"`
}
