// Package spec is aim's packaging standard: the aim.yaml manifest, its strict
// parser and its validation. Everything else in aim takes a validated
// *Manifest, so the rules live here and nowhere else.
package spec

import "time"

// FileName is the manifest's name inside a solution directory.
const FileName = "aim.yaml"

// Port is the one port every component serves HTTP on.
const Port = 8080

// Manifest is a solution as its provider describes it in aim.yaml.
type Manifest struct {
	// Name is a DNS label; it becomes the solution's subdomain. Required.
	Name string `yaml:"name" json:"name"`
	// Title is the human name shown in the catalog. Empty means Name.
	Title       string   `yaml:"title,omitempty" json:"title,omitempty"`
	Description string   `yaml:"description,omitempty" json:"description,omitempty"`
	Provider    Provider `yaml:"provider,omitempty" json:"provider,omitempty"`
	Tags        []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// Phases are the product-creation phases the solution helps with
	// (the paper's Figure 1), by which visitors filter the catalog.
	Phases []Phase `yaml:"phases,omitempty" json:"phases,omitempty"`
	// Thumbnail is an image file, relative to aim.yaml, that the catalog
	// shows: PNG, JPEG or WebP, at most MaxThumbnail bytes.
	Thumbnail string `yaml:"thumbnail,omitempty" json:"thumbnail,omitempty"`
	// Components are the containers of the solution. At least one.
	Components []Component `yaml:"components" json:"components"`
	Scaling    Scaling     `yaml:"scaling,omitempty" json:"scaling,omitempty"`
	Limits     Limits      `yaml:"limits,omitempty" json:"limits,omitempty"`
	// NodeGroup names the group of Kubernetes nodes the solution runs on
	// (e.g. general, solutions, gpu), a DNS label. Empty means the
	// operator's default group. On Docker it is ignored: there is one host.
	NodeGroup string `yaml:"nodeGroup,omitempty" json:"nodeGroup,omitempty"`
	// Visibility says who finds and reaches the solution: public (the
	// default: listed, and open to everyone), unlisted (open to everyone
	// who has its URL, not listed in the catalog) or private (listed for
	// and open to Access only, besides its provider and the admins).
	Visibility Visibility `yaml:"visibility,omitempty" json:"visibility,omitempty"`
	// Access names who may see and use a private solution. Only with
	// visibility: private, which needs at least one entry.
	Access Access `yaml:"access,omitempty" json:"access,omitzero"`
	// Egress says what the solution's containers may reach outside their
	// own solution: EgressDefault (empty: the internet, but not the host,
	// link-local and metadata addresses or private ranges) or EgressNone
	// (nothing but their siblings). An allow-list of hosts is refused:
	// docs/security.md says why.
	Egress Egress `yaml:"egress,omitempty" json:"egress,omitempty"`
}

// Phase is a phase of product creation, as the paper's Figure 1 names
// them.
type Phase string

// The phases, in the order of product creation.
const (
	StrategicPlanning     Phase = "strategic-product-planning"
	ProductDevelopment    Phase = "product-development"
	ServiceDevelopment    Phase = "service-development"
	ProductionDevelopment Phase = "production-system-development"
)

// Phases lists every phase, in order.
var Phases = []Phase{StrategicPlanning, ProductDevelopment, ServiceDevelopment, ProductionDevelopment}

// Title is the phase as a person reads it.
func (p Phase) Title() string {
	switch p {
	case StrategicPlanning:
		return "Strategic product planning"
	case ProductDevelopment:
		return "Product development"
	case ServiceDevelopment:
		return "Service development"
	case ProductionDevelopment:
		return "Production system development"
	}
	return string(p)
}

// MaxThumbnail bounds a thumbnail file.
const MaxThumbnail = 1 << 20

// Visibility is who finds and reaches a solution.
type Visibility string

// The visibilities; empty means Public.
const (
	Public   Visibility = "public"
	Unlisted Visibility = "unlisted"
	Private  Visibility = "private"
)

// Access lists the people a private solution is open to, as the OpenID
// provider names them: any one match admits.
type Access struct {
	// Emails are addresses, compared case-insensitively.
	Emails []string `yaml:"emails,omitempty" json:"emails,omitempty"`
	// Domains admit every verified address at that domain (not its
	// subdomains), e.g. example.com.
	Domains []string `yaml:"domains,omitempty" json:"domains,omitempty"`
	// Groups admit members of these OpenID groups (the groups claim).
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// Empty reports whether the list admits no one.
func (a Access) Empty() bool { return len(a.Emails)+len(a.Domains)+len(a.Groups) == 0 }

// IsPrivate reports whether the solution is open to its Access only.
func (m *Manifest) IsPrivate() bool { return m.Visibility == Private }

// Listed reports whether the catalog may show the solution to everyone
// (a private one is shown only to those it admits).
func (m *Manifest) Listed() bool { return m.Visibility == "" || m.Visibility == Public }

// Provider says who offers the solution and how to reach them.
type Provider struct {
	Name    string `yaml:"name,omitempty" json:"name,omitempty"`
	Contact string `yaml:"contact,omitempty" json:"contact,omitempty"`
	// Webhook is an http(s) URL aim POSTs each inquiry about the
	// provider's solutions to (the same as `aim webhook`). It is the
	// provider's, not the solution's: a deploy by the provider sets it;
	// empty leaves the provider's webhook as it is.
	Webhook string `yaml:"webhook,omitempty" json:"webhook,omitempty"`
}

// Component is one container image of a solution.
type Component struct {
	// Name is a DNS label, unique in the solution. Siblings reach the
	// component at http://<name>:8080.
	Name string `yaml:"name" json:"name"`
	// Image is an image reference the engine has or can pull. Exactly one
	// of Image and Build is set.
	Image string `yaml:"image,omitempty" json:"image,omitempty"`
	// Build is a directory, relative to aim.yaml, holding a Dockerfile.
	Build string `yaml:"build,omitempty" json:"build,omitempty"`
	// Dockerfile names the Dockerfile inside Build. Empty means "Dockerfile".
	Dockerfile string `yaml:"dockerfile,omitempty" json:"dockerfile,omitempty"`
	// Public components are reachable through the gateway. Nil means true
	// for a solution's only component and false otherwise.
	Public *bool `yaml:"public,omitempty" json:"public,omitempty"`
	// Paths are the path prefixes routed to a public component. Empty
	// means "/" for the first public component; later public components
	// must name theirs. The prefix is not stripped.
	Paths []string `yaml:"paths,omitempty" json:"paths,omitempty"`
	// Env is the environment: plain values, or {secret: NAME} for a value
	// kept apart as one of the solution's secrets (env.go).
	Env       map[string]EnvValue `yaml:"env,omitempty" json:"env,omitempty"`
	Resources Resources           `yaml:"resources,omitempty" json:"resources,omitempty"`
	// RunAsRoot lets a component whose image needs root keep it. By
	// default aim runs a root image as uid 65534.
	RunAsRoot bool `yaml:"runAsRoot,omitempty" json:"runAsRoot,omitempty"`
	// Ready says when the component is ready to serve. Unset means the
	// default rule (see ReadyAnswer).
	Ready Ready `yaml:"ready,omitempty" json:"ready,omitzero"`
	// Writable are directories the component may write besides /tmp, each
	// an empty in-memory filesystem of its own (see Writable); the root
	// filesystem stays read-only.
	Writable []Writable `yaml:"writable,omitempty" json:"writable,omitempty"`
	// Volumes are persistent directories (volumes.go): kept across
	// sleeps, wakes and deploys, deleted only when asked to.
	Volumes []Volume `yaml:"volumes,omitempty" json:"volumes,omitempty"`
}

// IsPublic reports whether the gateway routes to the component.
func (c Component) IsPublic() bool { return c.Public != nil && *c.Public }

// Resources bound one replica of a component. Zero values take the
// platform's defaults.
type Resources struct {
	// CPU in cores, e.g. "0.5" or 2.
	CPU CPU `yaml:"cpu,omitempty" json:"cpu,omitempty"`
	// Memory, e.g. "256Mi".
	Memory ByteSize `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Pids caps the number of processes and threads.
	Pids int64 `yaml:"pids,omitempty" json:"pids,omitempty"`
	// GPU is the number of NVIDIA GPUs the replica gets; zero means none.
	// A deploy that asks for one where there is none fails before any
	// container starts.
	GPU int64 `yaml:"gpu,omitempty" json:"gpu,omitempty"`
	// GPUType names the GPU model on Kubernetes, as NVIDIA's GPU feature
	// discovery labels nodes (nvidia.com/gpu.product, e.g. NVIDIA-L4).
	// Empty means any. Only with GPU; on Docker it is not checked: the
	// host has the GPUs it has.
	GPUType string `yaml:"gpuType,omitempty" json:"gpuType,omitempty"`
}

// Or fills the zero fields of r from d.
func (r Resources) Or(d Defaults) Resources {
	if r.CPU == 0 {
		r.CPU = d.CPU
	}
	if r.Memory == 0 {
		r.Memory = d.Memory
	}
	if r.Pids == 0 {
		r.Pids = d.Pids
	}
	return r
}

// Scaling says when a solution sleeps and how far it grows.
type Scaling struct {
	// Idle is how long without requests before the solution sleeps. Zero
	// means the platform's --idle-timeout.
	Idle Duration `yaml:"idle,omitempty" json:"idle,omitempty"`
	// Min replicas; above 0 the solution never sleeps.
	Min int `yaml:"min,omitempty" json:"min,omitempty"`
	// Max replicas of each public component. Zero means 1.
	Max int `yaml:"max,omitempty" json:"max,omitempty"`
	// Concurrency is the in-flight requests per replica above which the
	// scaler adds one. Zero means the platform default.
	Concurrency int `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// Hold asks the gateway to hold browsers too instead of showing them
	// a "starting" page while the solution wakes.
	Hold bool `yaml:"hold,omitempty" json:"hold,omitempty"`
}

// Limits protect a solution at the gateway. Zero values take the
// platform's defaults; the platform's caps bound them.
type Limits struct {
	// RPS is requests per second per client IP.
	RPS float64 `yaml:"rps,omitempty" json:"rps,omitempty"`
	// Burst is how many requests above RPS a client may send at once.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Body caps a request body, e.g. "10MiB".
	Body ByteSize `yaml:"body,omitempty" json:"body,omitempty"`
}

// Defaults are the platform-wide values a manifest's zero fields take.
type Defaults struct {
	CPU         CPU
	Memory      ByteSize
	Pids        int64
	Idle        time.Duration
	Concurrency int
}

// DefaultDefaults are used when the operator sets nothing.
var DefaultDefaults = Defaults{
	CPU:         1000,
	Memory:      512 << 20,
	Pids:        256,
	Idle:        30 * time.Minute,
	Concurrency: 50,
}

// PublicComponents returns the public components in manifest order.
func (m *Manifest) PublicComponents() []Component {
	var out []Component
	for _, c := range m.Components {
		if c.IsPublic() {
			out = append(out, c)
		}
	}
	return out
}

// Component returns the named component.
func (m *Manifest) Component(name string) (Component, bool) {
	for _, c := range m.Components {
		if c.Name == name {
			return c, true
		}
	}
	return Component{}, false
}

// DisplayTitle is the title, or the name when there is none.
func (m *Manifest) DisplayTitle() string {
	if m.Title != "" {
		return m.Title
	}
	return m.Name
}

// IdleTimeout is the solution's idle timeout, or def when it names none.
func (m *Manifest) IdleTimeout(def time.Duration) time.Duration {
	if m.Scaling.Idle > 0 {
		return time.Duration(m.Scaling.Idle)
	}
	return def
}
