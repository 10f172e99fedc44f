package spec

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Ready is how aim judges a component ready to serve: before a wake hands
// it the requests that waited, before a deploy routes to it, and as the
// Kubernetes readinessProbe.
type Ready struct {
	// Path is a clean absolute path, without query, that a GET must
	// answer with 2xx once the component can serve, e.g. /-/ready.
	Path string `yaml:"path" json:"path"`
}

// ReadyPath is the path aim GETs to judge the component ready.
func (c Component) ReadyPath() string {
	if c.Ready.Path != "" {
		return c.Ready.Path
	}
	return "/"
}

// ReadyAnswer reports whether code, the status of an answer to GET
// ReadyPath, means the component is ready: 2xx for a ready.path; without
// one, below 500 for a public component (the page the gateway would
// forward is no server error) and any answer for a private one (it need
// not serve /).
func (c Component) ReadyAnswer(code int) bool {
	switch {
	case c.Ready.Path != "":
		return code >= 200 && code < 300
	case c.IsPublic():
		return code < 500
	}
	return true
}

// readyPath is what a ready.path may hold: RFC 3986's path characters,
// without a query or a fragment.
var readyPath = regexp.MustCompile(`^/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$`)

// readyProblem says what is wrong with a component's ready mapping, or
// returns "". given is true when the manifest has one.
func readyProblem(r Ready, given bool) string {
	p := r.Path
	switch {
	case p == "" && given:
		return "is required: the path a GET answers with 2xx once the component can serve, e.g. /-/ready"
	case p == "":
		return ""
	case len(p) > 1024:
		return fmt.Sprintf("is %d characters; at most 1024", len(p))
	case !readyPath.MatchString(p) || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/":
		return fmt.Sprintf("%q is not a clean absolute path like /-/ready (URL path characters only: no query, no spaces, no . or .. segments)", p)
	}
	return ""
}
