package spec

import "go.yaml.in/yaml/v3"

// Egress is what a solution's containers may reach beyond their siblings.
type Egress string

// The egress policies; empty means EgressDefault.
const (
	EgressDefault Egress = "default"
	EgressNone    Egress = "none"
	// egressList marks a list in aim.yaml, which validate refuses with a
	// message of its own rather than yaml's "expected string".
	egressList Egress = "\x00list"
)

// Closed reports whether the solution may reach nothing but its siblings.
func (e Egress) Closed() bool { return e == EgressNone }

// UnmarshalYAML takes a scalar as it is and notes a sequence, so that an
// allow-list gets a located error that says what is supported.
func (e *Egress) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		*e = egressList
		return nil
	}
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*e = Egress(s)
	return nil
}

// validateEgress checks the egress field.
func (m *Manifest) validateEgress(file string, idx *nodeIndex) []FieldError {
	msg := ""
	switch m.Egress {
	case "", EgressDefault, EgressNone:
		return nil
	case egressList:
		msg = "an allow-list of hosts is not supported (aim could not enforce it honestly: " +
			"an address allowed for one name serves many); use egress: default (the internet, but not the host, " +
			"link-local or metadata addresses, or private ranges) or egress: none (nothing but the solution's own components)"
	default:
		msg = "\"" + string(m.Egress) + "\" is not one of default, none"
	}
	return []FieldError{{File: file, Line: idx.line("egress"), Field: "egress", Msg: msg}}
}
