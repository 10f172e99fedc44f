package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"

	"go.yaml.in/yaml/v3"
)

// EnvValue is one environment variable of a component: a plain value
// (`KEY: value`) or a reference to one of the solution's secrets
// (`KEY: {secret: NAME}`). A secret's value is never in the manifest: aim
// keeps it apart (`aim secret set`) and puts it in the environment only
// when it creates the container.
type EnvValue struct {
	// Value is the plain value; empty for a secret.
	Value string
	// Secret names the solution's secret whose value the variable takes.
	Secret string
}

// Plain is an EnvValue of the value v.
func Plain(v string) EnvValue { return EnvValue{Value: v} }

// SecretRef is an EnvValue taken from the solution's secret name.
func SecretRef(name string) EnvValue { return EnvValue{Secret: name} }

func (e *EnvValue) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*e = EnvValue{}
		if n.Tag != "!!null" {
			e.Value = n.Value
		}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 || n.Content[0].Value != "secret" || n.Content[1].Kind != yaml.ScalarNode {
			return envError(n, errors.New("an environment value is a string or {secret: NAME}"))
		}
		*e = EnvValue{Secret: n.Content[1].Value}
		return nil
	}
	return envError(n, errors.New("an environment value is a string or {secret: NAME}"))
}

func envError(n *yaml.Node, err error) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %v", n.Line, n.Column, err)}}
}

func (e EnvValue) MarshalYAML() (any, error) {
	if e.Secret != "" {
		return map[string]string{"secret": e.Secret}, nil
	}
	return e.Value, nil
}

// MarshalJSON writes the plain form as a string, as manifests stored
// before secrets existed have it, and a secret as {"secret": NAME}.
func (e EnvValue) MarshalJSON() ([]byte, error) {
	if e.Secret != "" {
		return json.Marshal(map[string]string{"secret": e.Secret})
	}
	return json.Marshal(e.Value)
}

func (e *EnvValue) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = EnvValue{Value: s}
		return nil
	}
	var ref struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(b, &ref); err != nil || ref.Secret == "" {
		return fmt.Errorf("an environment value is a string or {\"secret\": NAME}, not %s", b)
	}
	*e = EnvValue{Secret: ref.Secret}
	return nil
}

var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// ValidSecretName checks a secret's name: a letter or _, then letters,
// digits, _, . or -, at most 253 (what a Kubernetes Secret's key may be).
func ValidSecretName(s string) error {
	if len(s) > 253 || !secretName.MatchString(s) {
		return fmt.Errorf("%q is not a secret name: use a letter or _, then letters, digits, _, . or - (at most 253)", s)
	}
	return nil
}

// EnvKeys returns env's names, sorted.
func EnvKeys(env map[string]EnvValue) []string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Secrets lists the secrets the manifest's components use, sorted, each
// once.
func (m *Manifest) Secrets() []string {
	var out []string
	for _, c := range m.Components {
		for _, v := range c.Env {
			if v.Secret != "" && !slices.Contains(out, v.Secret) {
				out = append(out, v.Secret)
			}
		}
	}
	sort.Strings(out)
	return out
}

// UsesSecret reports whether a component of m takes its environment from
// the secret name.
func (m *Manifest) UsesSecret(name string) bool { return len(m.SecretUsers(name)) > 0 }

// SecretUsers names the components of m whose environment takes the
// secret name, in the manifest's order; none for a nil m.
func (m *Manifest) SecretUsers(name string) []string {
	if m == nil {
		return nil
	}
	var out []string
	for _, c := range m.Components {
		for _, v := range c.Env {
			if v.Secret == name && !slices.Contains(out, c.Name) {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

// CheckSecrets refuses a manifest that uses a secret have does not hold,
// with an error located at each reference in data, the manifest file as
// it was parsed (nil when there is none, as for a rollback). Deploys call
// it before anything starts.
func CheckSecrets(file string, data []byte, m *Manifest, have func(name string) bool) error {
	var idx *nodeIndex
	var probs []FieldError
	for i, c := range m.Components {
		for _, k := range EnvKeys(c.Env) {
			v := c.Env[k]
			if v.Secret == "" || have(v.Secret) {
				continue
			}
			if idx == nil {
				idx = &nodeIndex{byPath: map[string]*yaml.Node{}}
				var root yaml.Node
				if yaml.Unmarshal(data, &root) == nil && len(root.Content) > 0 {
					idx = indexNodes(root.Content[0])
				}
			}
			f := fmt.Sprintf("components[%d].env.%s", i, k)
			probs = append(probs, FieldError{File: file, Line: idx.line(f + ".secret"), Field: f,
				Msg: fmt.Sprintf("secret %q is not set for solution %s: set it first with `aim secret set %s %s` (the value on stdin)", v.Secret, m.Name, m.Name, v.Secret)})
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return &Error{probs}
}
