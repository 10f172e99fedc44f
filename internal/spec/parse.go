package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// FieldError is one thing wrong with a manifest, located as precisely as
// the YAML allows.
type FieldError struct {
	File  string // as given to Parse
	Line  int    // 1-based; 0 when unknown
	Field string // e.g. components[1].name; empty for the whole document
	Msg   string
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Error lists every problem found in a manifest, in file order.
type Error struct {
	Problems []FieldError
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// ReadFile parses and validates dir/aim.yaml, or the file itself when path
// names a file.
func ReadFile(p string) (*Manifest, error) {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, FileName)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	defer f.Close()
	// One byte past the limit is enough for Parse to refuse it: a huge
	// file is never read whole.
	data, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	if len(data) > maxManifest {
		return nil, &Error{[]FieldError{{File: p, Msg: fmt.Sprintf("manifest is larger than the limit of %d bytes", maxManifest)}}}
	}
	return Parse(p, data)
}

// maxManifest bounds what Parse reads; a manifest is a page, not a payload.
const maxManifest = 1 << 20

// Parse decodes a manifest strictly (unknown fields, wrong types and
// missing required fields are errors that name the line and the field),
// validates it and fills the defaults that depend on the manifest itself.
// file names the manifest in error messages.
func Parse(file string, data []byte) (*Manifest, error) {
	if len(data) > maxManifest {
		return nil, &Error{[]FieldError{{File: file, Msg: fmt.Sprintf("manifest is %d bytes; the limit is %d", len(data), maxManifest)}}}
	}
	if fe, ok := invalidUTF8(file, data); ok {
		return nil, &Error{[]FieldError{fe}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &Error{[]FieldError{yamlSyntaxError(file, err)}}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &Error{[]FieldError{{File: file, Msg: "manifest is empty"}}}
	}
	idx := indexNodes(root.Content[0])

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &Error{[]FieldError{yamlSyntaxError(file, err)}}
		}
		probs := make([]FieldError, 0, len(te.Errors))
		for _, s := range te.Errors {
			probs = append(probs, typeError(file, s, idx))
		}
		return nil, &Error{probs}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, &Error{[]FieldError{{File: file, Line: extra.Line, Msg: "only one YAML document is allowed"}}}
	}
	if probs := m.validate(file, idx); len(probs) > 0 {
		return nil, &Error{probs}
	}
	m.fillDefaults()
	return &m, nil
}

// nodeIndex maps field paths to the YAML nodes that hold them, and lines
// back to the path of the first key on that line.
type nodeIndex struct {
	byPath map[string]*yaml.Node
	byLine map[int]string
	byPos  map[[2]int]string // line and column of a value
}

func indexNodes(doc *yaml.Node) *nodeIndex {
	idx := &nodeIndex{byPath: map[string]*yaml.Node{}, byLine: map[int]string{}, byPos: map[[2]int]string{}}
	var walk func(n *yaml.Node, p string)
	walk = func(n *yaml.Node, p string) {
		idx.byPath[p] = n
		idx.byPos[[2]int{n.Line, n.Column}] = p
		if _, ok := idx.byLine[n.Line]; !ok && p != "" && n.Kind != yaml.MappingNode {
			idx.byLine[n.Line] = p
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				cp := k
				if p != "" {
					cp = p + "." + k
				}
				if _, ok := idx.byLine[n.Content[i].Line]; !ok {
					idx.byLine[n.Content[i].Line] = cp
				}
				walk(n.Content[i+1], cp)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", p, i))
			}
		}
	}
	walk(doc, "")
	return idx
}

// line returns the line of the field at path p, or of its nearest parent
// present in the file.
func (idx *nodeIndex) line(p string) int {
	for {
		if n, ok := idx.byPath[p]; ok {
			return n.Line
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			if n, ok := idx.byPath[""]; ok {
				return n.Line
			}
			return 0
		}
		p = p[:i]
	}
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func yamlSyntaxError(file string, err error) FieldError {
	s := err.Error()
	if m := yamlLine.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		return FieldError{File: file, Line: n, Msg: "not valid YAML: " + m[2]}
	}
	return FieldError{File: file, Msg: "not valid YAML: " + strings.TrimPrefix(s, "yaml: ")}
}

var (
	columnPrefix = regexp.MustCompile(`^column (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type spec\.(\w+)$`)
	cannotDecode = regexp.MustCompile("^cannot unmarshal !!(\\w+) `?(.*?)`? into (\\S+)$")
)

// typeError turns one of yaml's "line N: ..." messages into a FieldError
// that a provider can act on without knowing aim's Go types.
func typeError(file, s string, idx *nodeIndex) FieldError {
	fe := FieldError{File: file, Msg: s}
	m := yamlLine.FindStringSubmatch(s)
	if m == nil {
		return fe
	}
	fe.Line, _ = strconv.Atoi(m[1])
	fe.Msg = m[2]
	field := idx.byLine[fe.Line]
	// aim's own value types report the column too, which pins the field
	// on a line that holds several (a flow mapping).
	if c := columnPrefix.FindStringSubmatch(fe.Msg); c != nil {
		col, _ := strconv.Atoi(c[1])
		if p, ok := idx.byPos[[2]int{fe.Line, col}]; ok {
			field = p
		}
		fe.Msg = c[2]
	}
	if u := unknownField.FindStringSubmatch(fe.Msg); u != nil {
		fe.Field = field
		fe.Msg = fmt.Sprintf("unknown field %q in %s", u[1], strings.ToLower(u[2]))
		return fe
	}
	if c := cannotDecode.FindStringSubmatch(fe.Msg); c != nil {
		fe.Field = field
		fe.Msg = fmt.Sprintf("expected %s, got %s", goTypeName(c[3]), yamlKind(c[1], c[2]))
		return fe
	}
	fe.Field = field
	return fe
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case t == "string":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "*"):
		return goTypeName(t[1:])
	}
	return "a mapping"
}

func yamlKind(tag, val string) string {
	switch tag {
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	}
	if val != "" {
		return fmt.Sprintf("%q", val)
	}
	return "a " + tag
}

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// labelValue is a Kubernetes label value, not empty.
	labelValue = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// reservedNames are refused as solution names: a visitor would take
// <name>.<domain> for the platform's own page, sign-in or API, and a
// few (wpad, autodiscover, isatap) are names clients look up on their
// own to find a proxy or a mail server, which a tenant must never answer.
var reservedNames = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`www api admin administrator auth login logout signin signup sso oauth
		oidc account accounts me aim mail smtp imap pop static assets cdn status docs help
		support security dashboard console registry metrics localhost wpad autodiscover isatap`) {
		reservedNames[n] = true
	}
}

// invalidUTF8 locates the first byte of data that is not UTF-8: the YAML
// parser only says that there is one.
func invalidUTF8(file string, data []byte) (FieldError, bool) {
	if utf8.Valid(data) {
		return FieldError{}, false
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return FieldError{File: file, Line: line, Msg: fmt.Sprintf("byte %#x at column %d is not UTF-8 (a manifest is UTF-8 text)", data[i], col)}, true
		}
		if r == '\n' {
			line, col = line+1, 0
		}
		i += n
		col++
	}
	return FieldError{}, false
}

// ValidName says why s is not a DNS label, or returns nil.
func ValidName(s string) error {
	switch {
	case s == "":
		return errors.New("is required")
	case len(s) > 63:
		return fmt.Errorf("%q is %d characters; a DNS label has at most 63", s, len(s))
	case !dnsLabel.MatchString(s):
		return fmt.Errorf("%q is not a DNS label: use lower-case letters, digits and '-', starting and ending with a letter or digit", s)
	}
	return nil
}

func (m *Manifest) validate(file string, idx *nodeIndex) []FieldError {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{File: file, Line: idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := ValidName(m.Name); err != nil {
		add("name", "%v", err)
	} else if reservedNames[m.Name] {
		add("name", "%q is reserved: %s.<domain> could pass for the platform's own (choose another name)", m.Name, m.Name)
	}
	if len(m.Title) > 100 {
		add("title", "is %d characters; at most 100", len(m.Title))
	}
	if len(m.Description) > 2000 {
		add("description", "is %d characters; at most 2000", len(m.Description))
	}
	for i, t := range m.Tags {
		if t == "" || len(t) > 32 {
			add(fmt.Sprintf("tags[%d]", i), "a tag has 1 to 32 characters")
		}
	}
	if len(m.Components) == 0 {
		add("components", "is required: a solution has at least one component")
	}
	seen := map[string]bool{}
	single := len(m.Components) == 1
	publicCount := 0
	for i, c := range m.Components {
		f := fmt.Sprintf("components[%d]", i)
		if err := ValidName(c.Name); err != nil {
			add(f+".name", "%v", err)
		} else if seen[c.Name] {
			add(f+".name", "%q is used by another component", c.Name)
		}
		seen[c.Name] = true
		switch {
		case c.Image == "" && c.Build == "":
			add(f, "needs either image (a reference) or build (a directory with a Dockerfile)")
		case c.Image != "" && c.Build != "":
			add(f, "has both image and build; keep one")
		case c.Build != "":
			if filepath.IsAbs(c.Build) || strings.HasPrefix(path.Clean(filepath.ToSlash(c.Build)), "../") || path.Clean(c.Build) == ".." {
				add(f+".build", "%q must be a directory inside the solution's directory", c.Build)
			}
		case strings.ContainsAny(c.Image, " \t\n"):
			add(f+".image", "%q is not an image reference", c.Image)
		}
		if c.Dockerfile != "" && c.Build == "" {
			add(f+".dockerfile", "only goes with build")
		}
		if c.IsPublic() || (c.Public == nil && single) {
			publicCount++
		} else if len(c.Paths) > 0 {
			add(f+".paths", "only a public component has paths; add public: true")
		}
		for j, p := range c.Paths {
			pf := fmt.Sprintf("%s.paths[%d]", f, j)
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?# \t") || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
				add(pf, "%q is not a clean path prefix like /api", p)
			}
		}
		for k, v := range c.Env {
			if !envName.MatchString(k) {
				add(f+".env."+k, "%q is not a valid environment variable name", k)
			} else if v.Secret != "" {
				if err := ValidSecretName(v.Secret); err != nil {
					add(f+".env."+k+".secret", "%v", err)
				}
			}
		}
		if c.Resources.Pids < 0 {
			add(f+".resources.pids", "must not be negative")
		}
		if msg := readyProblem(c.Ready, idx.byPath[f+".ready"] != nil); msg != "" {
			add(f+".ready.path", "%s", msg)
		}
		validateWritable(c, f, add)
		validateGPU(c.Resources, f, add)
	}
	if len(m.Components) > 0 && publicCount == 0 {
		add("components", "no component is public: mark the one that serves the web page with public: true")
	}
	if s := m.Scaling; s.Min < 0 || s.Max < 0 || s.Concurrency < 0 {
		add("scaling", "min, max and concurrency must not be negative")
	} else if s.Max > 0 && s.Min > s.Max {
		add("scaling.min", "is %d, above max %d", s.Min, s.Max)
	}
	if l := m.Limits; l.RPS < 0 || l.Burst < 0 {
		add("limits", "rps and burst must not be negative")
	}
	if m.NodeGroup != "" {
		if err := ValidName(m.NodeGroup); err != nil {
			add("nodeGroup", "%v", err)
		}
	}
	probs = append(probs, m.validateAccess(file, idx)...)
	probs = append(probs, m.validateEgress(file, idx)...)
	probs = append(probs, m.validateVolumes(file, idx)...)
	probs = append(probs, m.validateCatalog(file, idx)...)
	if len(probs) > 0 {
		return probs
	}
	// Routes are checked once the defaults are known, on a copy, so that a
	// manifest with errors is never half-filled.
	c := *m
	c.Components = append([]Component(nil), m.Components...)
	if err := c.fillDefaults(); err != nil {
		add(err.field, "%s", err.msg)
	}
	return probs
}

type defaultsError struct{ field, msg string }

// fillDefaults makes the single component public, gives the first public
// component "/" and checks that every path is routed once.
func (m *Manifest) fillDefaults() *defaultsError {
	yes := true
	if len(m.Components) == 1 && m.Components[0].Public == nil {
		m.Components[0].Public = &yes
	}
	owner := map[string]string{}
	first := true
	for i := range m.Components {
		c := &m.Components[i]
		for j := range c.Writable {
			if c.Writable[j].Size == 0 {
				c.Writable[j].Size = DefaultWritableSize
			}
		}
		if !c.IsPublic() {
			continue
		}
		if len(c.Paths) == 0 {
			if !first {
				return &defaultsError{fmt.Sprintf("components[%d].paths", i), "a public component other than the first must name its path prefixes, e.g. [/api]"}
			}
			c.Paths = []string{"/"}
		}
		first = false
		for _, p := range c.Paths {
			if o, ok := owner[p]; ok {
				return &defaultsError{fmt.Sprintf("components[%d].paths", i), fmt.Sprintf("%q is already routed to component %q", p, o)}
			}
			owner[p] = c.Name
		}
	}
	if _, ok := owner["/"]; !ok {
		return &defaultsError{"components", `no public component serves "/": the solution's web page must be at /`}
	}
	return nil
}

// validateAccess checks visibility and its access list: a private
// solution admits someone, a public or unlisted one names no list (which
// would suggest a restriction that is not enforced), and each entry is
// well formed.
func (m *Manifest) validateAccess(file string, idx *nodeIndex) []FieldError {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{File: file, Line: idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch m.Visibility {
	case "", Public, Unlisted:
		if !m.Access.Empty() {
			add("access", "only a private solution has an access list; add visibility: private")
		}
	case Private:
		if m.Access.Empty() {
			add("access", "a private solution needs at least one of emails, domains or groups (its provider and the admins are always admitted)")
		}
	default:
		add("visibility", "%q is not one of public, unlisted, private", m.Visibility)
	}
	for i, e := range m.Access.Emails {
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || !validDomain(domain) || strings.ContainsAny(e, " \t<>,;") {
			add(fmt.Sprintf("access.emails[%d]", i), "%q is not an e-mail address", e)
		}
	}
	for i, d := range m.Access.Domains {
		if !validDomain(strings.TrimPrefix(d, "@")) || strings.HasPrefix(d, "*") {
			add(fmt.Sprintf("access.domains[%d]", i), "%q is not a domain like example.com", d)
		}
	}
	for i, g := range m.Access.Groups {
		if g == "" || len(g) > 256 || strings.ContainsAny(g, "\n\r") {
			add(fmt.Sprintf("access.groups[%d]", i), "a group name has 1 to 256 characters on one line")
		}
	}
	return probs
}

// validDomain accepts a DNS name of two or more labels.
func validDomain(d string) bool {
	labels := strings.Split(strings.ToLower(d), ".")
	if len(labels) < 2 || len(d) > 253 {
		return false
	}
	for _, l := range labels {
		if ValidName(l) != nil {
			return false
		}
	}
	return true
}

// validateCatalog checks what the catalog shows of a solution: its
// phases, each one of Phases and named once, and its thumbnail's path
// (the file itself is checked where it is read: aim deploy and the API).
func (m *Manifest) validateCatalog(file string, idx *nodeIndex) []FieldError {
	var probs []FieldError
	add := func(field, format string, args ...any) {
		probs = append(probs, FieldError{File: file, Line: idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[Phase]bool{}
	for i, p := range m.Phases {
		f := fmt.Sprintf("phases[%d]", i)
		switch {
		case !slices.Contains(Phases, p):
			names := make([]string, len(Phases))
			for j, q := range Phases {
				names[j] = string(q)
			}
			add(f, "%q is not a phase; use one of %s", p, strings.Join(names, ", "))
		case seen[p]:
			add(f, "%q is named twice", p)
		}
		seen[p] = true
	}
	if t := m.Thumbnail; t != "" {
		ext := strings.ToLower(path.Ext(t))
		switch {
		case filepath.IsAbs(t) || strings.HasPrefix(path.Clean(filepath.ToSlash(t)), "../") || path.Clean(t) == "..":
			add("thumbnail", "%q must be a file inside the solution's directory", t)
		case ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".webp":
			add("thumbnail", "%q is not a .png, .jpg or .webp file", t)
		}
	}
	if w := m.Provider.Webhook; w != "" {
		if err := CheckWebhookURL(w); err != nil {
			add("provider.webhook", "%s", err)
		}
	}
	return probs
}
