package v1alpha1

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/internal/spec"
)

// FieldError is one thing wrong with a Solution, located by its field
// path in the object, e.g. spec.components[1].name.
//
// +kubebuilder:object:generate=false
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem ToManifest found.
//
// +kubebuilder:object:generate=false
type ValidationError struct {
	Problems []FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "; ")
}

// FromManifest is the spec of a Solution that serves m. images maps
// component names to the images they run, as a registry holds them; a
// component it does not name keeps its manifest's image. A component
// built from a directory must be in images. The spec's Owner is left
// empty: aim.yaml does not say whose a solution is, aim does.
func FromManifest(m *spec.Manifest, images map[string]string) SolutionSpec {
	s := SolutionSpec{
		Title:       m.Title,
		Description: m.Description,
		// provider.webhook is the provider's, kept in aim's store at the
		// deploy, not the solution's: the Solution does not carry it.
		Provider:  Provider{Name: m.Provider.Name, Contact: m.Provider.Contact},
		Tags:      append([]string(nil), m.Tags...),
		NodeGroup: m.NodeGroup,
		Scaling: Scaling{
			Min:         int32(m.Scaling.Min),
			Max:         int32(m.Scaling.Max),
			Concurrency: int32(m.Scaling.Concurrency),
			Hold:        m.Scaling.Hold,
		},
		Limits:     Limits{Burst: int32(m.Limits.Burst)},
		Visibility: string(m.Visibility),
		Egress:     string(m.Egress),
	}
	for _, p := range m.Phases {
		s.Phases = append(s.Phases, string(p))
	}
	if !m.Access.Empty() {
		s.Access = &Access{
			Emails:  append([]string(nil), m.Access.Emails...),
			Domains: append([]string(nil), m.Access.Domains...),
			Groups:  append([]string(nil), m.Access.Groups...),
		}
	}
	if m.Scaling.Idle > 0 {
		s.Scaling.Idle = &metav1.Duration{Duration: time.Duration(m.Scaling.Idle)}
	}
	if m.Limits.RPS > 0 {
		s.Limits.RPS = resource.NewMilliQuantity(int64(math.Round(m.Limits.RPS*1000)), resource.DecimalSI)
	}
	if m.Limits.Body > 0 {
		s.Limits.Body = resource.NewQuantity(int64(m.Limits.Body), resource.BinarySI)
	}
	for _, c := range m.Components {
		img := c.Image
		if i, ok := images[c.Name]; ok {
			img = i
		}
		out := Component{
			Name:      c.Name,
			Image:     img,
			Paths:     append([]string(nil), c.Paths...),
			RunAsRoot: c.RunAsRoot,
			Resources: Resources{Pids: c.Resources.Pids, GPU: c.Resources.GPU, GPUType: c.Resources.GPUType},
			Ready:     Ready{Path: c.Ready.Path},
		}
		for _, w := range c.Writable {
			cw := Writable{Path: w.Path}
			if w.Size > 0 {
				cw.Size = resource.NewQuantity(int64(w.Size), resource.BinarySI)
			}
			out.Writable = append(out.Writable, cw)
		}
		if c.Public != nil {
			p := *c.Public
			out.Public = &p
		}
		for _, v := range c.Volumes {
			out.Volumes = append(out.Volumes, Volume{Name: v.Name, Path: v.Path, Size: *resource.NewQuantity(int64(v.Size), resource.BinarySI), ReadOnly: v.ReadOnly})
		}
		for k, v := range c.Env {
			if v.Secret != "" {
				if out.SecretEnv == nil {
					out.SecretEnv = map[string]string{}
				}
				out.SecretEnv[k] = v.Secret
				continue
			}
			if out.Env == nil {
				out.Env = map[string]string{}
			}
			out.Env[k] = v.Value
		}
		if c.Resources.CPU > 0 {
			out.Resources.CPU = resource.NewMilliQuantity(int64(c.Resources.CPU), resource.DecimalSI)
		}
		if c.Resources.Memory > 0 {
			out.Resources.Memory = resource.NewQuantity(int64(c.Resources.Memory), resource.BinarySI)
		}
		s.Components = append(s.Components, out)
	}
	return s
}

// ToManifest is the manifest that a Solution named name with spec s
// stands for, checked by the same rules as aim.yaml (internal/spec) and
// with its defaults filled. When s breaks a rule the error is a
// *ValidationError whose fields are paths in the Solution object
// (metadata.name, spec.components[1].name).
func ToManifest(name string, s SolutionSpec) (*spec.Manifest, error) {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	m := spec.Manifest{
		Name:        name,
		Title:       s.Title,
		Description: s.Description,
		Provider:    spec.Provider{Name: s.Provider.Name, Contact: s.Provider.Contact},
		Tags:        s.Tags,
		NodeGroup:   s.NodeGroup,
		Scaling: spec.Scaling{
			Min:         int(s.Scaling.Min),
			Max:         int(s.Scaling.Max),
			Concurrency: int(s.Scaling.Concurrency),
			Hold:        s.Scaling.Hold,
		},
		Limits:     spec.Limits{Burst: int(s.Limits.Burst)},
		Visibility: spec.Visibility(s.Visibility),
		Egress:     spec.Egress(s.Egress),
	}
	for _, p := range s.Phases {
		m.Phases = append(m.Phases, spec.Phase(p))
	}
	if a := s.Access; a != nil {
		m.Access = spec.Access{Emails: a.Emails, Domains: a.Domains, Groups: a.Groups}
	}
	// The owner is no part of aim.yaml, so spec.Parse does not see it.
	if s.Owner != "" {
		if err := spec.ValidName(s.Owner); err != nil {
			add("spec.owner", "%v", err)
		}
	}
	if d := s.Scaling.Idle; d != nil {
		if d.Duration <= 0 {
			add("spec.scaling.idle", "%q is not a positive duration", d.Duration)
		}
		m.Scaling.Idle = spec.Duration(d.Duration)
	}
	// The manifest's units reject zero and negative amounts, but a zero
	// would be dropped on the way (it means "the default" there), so
	// quantities are checked here.
	if q := s.Limits.RPS; q != nil {
		if q.Sign() < 0 {
			add("spec.limits.rps", "%s is negative", q)
		}
		m.Limits.RPS = q.AsApproximateFloat64()
	}
	if q := s.Limits.Body; q != nil {
		if q.Sign() <= 0 {
			add("spec.limits.body", "%s is not a positive size", q)
		}
		m.Limits.Body = spec.ByteSize(q.Value())
	}
	for i, c := range s.Components {
		m.Components = append(m.Components, toComponent(fmt.Sprintf("spec.components[%d]", i), c, add))
	}
	if len(probs) > 0 {
		return nil, &ValidationError{probs}
	}
	// Through YAML and spec.Parse, so that a Solution obeys exactly the
	// rules an aim.yaml does, with no second copy of them to drift.
	data, err := yaml.Marshal(&m)
	if err != nil {
		return nil, fmt.Errorf("encoding solution %s as a manifest: %w", name, err)
	}
	out, err := spec.Parse("spec", data)
	var se *spec.Error
	if errors.As(err, &se) {
		for _, p := range se.Problems {
			probs = append(probs, FieldError{Field: objectPath(p.Field), Msg: p.Msg})
		}
		return nil, &ValidationError{probs}
	}
	if err != nil {
		return nil, fmt.Errorf("checking solution %s: %w", name, err)
	}
	return out, nil
}

// toComponent converts one component of a SolutionSpec, field f, adding
// what it finds wrong with its quantities.
func toComponent(f string, c Component, add func(field, format string, args ...any)) spec.Component {
	mc := spec.Component{
		Name:      c.Name,
		Image:     c.Image,
		Public:    c.Public,
		Paths:     c.Paths,
		Env:       componentEnv(c),
		RunAsRoot: c.RunAsRoot,
		Resources: spec.Resources{Pids: c.Resources.Pids, GPU: c.Resources.GPU, GPUType: c.Resources.GPUType},
		Ready:     spec.Ready{Path: c.Ready.Path},
	}
	for k := range c.SecretEnv {
		if _, both := c.Env[k]; both {
			add(f+".secretEnv."+k, "is in env too; keep one")
		}
	}
	for j, w := range c.Writable {
		mw := spec.Writable{Path: w.Path}
		if q := w.Size; q != nil {
			if q.Sign() <= 0 {
				add(fmt.Sprintf("%s.writable[%d].size", f, j), "%s is not a positive size", q)
			}
			mw.Size = spec.ByteSize(q.Value())
		}
		mc.Writable = append(mc.Writable, mw)
	}
	for j, v := range c.Volumes {
		if v.Size.Sign() <= 0 {
			add(fmt.Sprintf("%s.volumes[%d].size", f, j), "%s is not a positive size", &v.Size)
		}
		mc.Volumes = append(mc.Volumes, spec.Volume{Name: v.Name, Path: v.Path, Size: spec.ByteSize(v.Size.Value()), ReadOnly: v.ReadOnly})
	}
	if q := c.Resources.CPU; q != nil {
		if q.MilliValue() <= 0 {
			add(f+".resources.cpu", "%s is not a positive amount of CPU (at least 1m)", q)
		}
		mc.Resources.CPU = spec.CPU(q.MilliValue())
	}
	if q := c.Resources.Memory; q != nil {
		if q.Sign() <= 0 {
			add(f+".resources.memory", "%s is not a positive size", q)
		}
		mc.Resources.Memory = spec.ByteSize(q.Value())
	}
	return mc
}

// ClaimName is the PersistentVolumeClaim of a solution's volume:
// <solution>.<volume>. A claim's name is a DNS subdomain, and the dot
// occurs in neither name, so two solutions' claims never meet (as
// <solution>-<volume> would for a-b's c and a's b-c).
func ClaimName(sol, vol string) string { return sol + "." + vol }

// OwnerOf is whose sol is: its spec.owner, or for a Solution an earlier
// aim's API deployed, its AnnotationOwner. Empty means the admins'.
func OwnerOf(sol *Solution) string {
	return cmp.Or(sol.Spec.Owner, sol.Annotations[AnnotationOwner])
}

// objectPath turns a manifest field path into the Solution's.
func objectPath(field string) string {
	switch field {
	case "":
		return "spec"
	case "name":
		return "metadata.name"
	}
	return "spec." + field
}

// componentEnv joins a component's plain and secret environment back into
// the manifest's form.
func componentEnv(c Component) map[string]spec.EnvValue {
	if len(c.Env)+len(c.SecretEnv) == 0 {
		return nil
	}
	env := make(map[string]spec.EnvValue, len(c.Env)+len(c.SecretEnv))
	for k, v := range c.Env {
		env[k] = spec.Plain(v)
	}
	for k, v := range c.SecretEnv {
		env[k] = spec.SecretRef(v)
	}
	return env
}
