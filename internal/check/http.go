package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// maxBody bounds what a probe reads of an answer.
const maxBody = 1 << 20

// NewHTTPClient is the probes' client: no proxy from the environment, no
// connection reuse (each probe sees the server as a new visitor would),
// and a timeout per request.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
		},
	}
}

// Answer is what one GET found.
type Answer struct {
	status int
	ctype  string // media type without parameters
	body   []byte
	chain  []string // paths of redirects followed, if any
}

// Get fetches path from addr (host:port), with Host set to host when
// host is not empty.
func Get(ctx context.Context, hc *http.Client, addr, host, p string) (*Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p, nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "aim-check")
	req.Header.Set("Accept", "text/html,application/json;q=0.9,*/*;q=0.8")
	var chain []string
	c := *hc
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("more than 5 redirects")
		}
		if r.URL.Host != req.URL.Host {
			return http.ErrUseLastResponse
		}
		chain = append(chain, r.URL.Path)
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return &Answer{status: resp.StatusCode, ctype: mt, body: body, chain: chain}, nil
}

// describe writes an answer as evidence: "GET / → 302 /ui/ → 200 text/html".
func (a *Answer) describe(p string) string {
	var b strings.Builder
	b.WriteString("GET " + p)
	for _, c := range a.chain {
		b.WriteString(" → " + c)
	}
	fmt.Fprintf(&b, " → %d", a.status)
	if a.status == http.StatusOK {
		ct := a.ctype
		if ct == "" {
			ct = "no Content-Type"
		}
		b.WriteString(" " + ct)
	}
	return b.String()
}

// ShortErr trims Go's "Get \"http://...\": " prefix from a client error.
func ShortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "\": "); i >= 0 {
		s = s[i+3:]
	}
	return s
}

// ProbeRoot judges root-html on the component serving "/".
func ProbeRoot(ctx context.Context, hc *http.Client, addr, comp string) (Result, []byte) {
	a, err := Get(ctx, hc, addr, "", "/")
	if err != nil {
		return NewResult("root-html", comp, Fail, "GET / failed: "+ShortErr(err)), nil
	}
	if a.status == http.StatusOK && (a.ctype == "text/html" || a.ctype == "application/xhtml+xml") {
		return NewResult("root-html", comp, Pass, fmt.Sprintf("%s (%s)", a.describe("/"), FormatBytes(int64(len(a.body))))), a.body
	}
	return NewResult("root-html", comp, Fail, a.describe("/")), a.body
}

// linkRE finds a link to an OpenAPI document in a page: an href, src or
// url: whose target names openapi or swagger and ends in .json or .yaml.
var linkRE = regexp.MustCompile(`(?i)(?:href|src|url)\s*[=:]\s*["']([^"'#?]*(?:openapi|swagger)[^"'#?]*\.(?:json|ya?ml))["']`)

// APITarget is a public component as the OpenAPI and health probes see it.
type APITarget struct {
	Comp  spec.Component
	Addr  string
	Paths []string
	Root  []byte // the body of GET /, for the component serving "/"
}

// ProbeOpenAPI looks for an OpenAPI document at <prefix>/openapi.json of
// every public component, then for one the root page links. It returns
// the result and the document's path.
func ProbeOpenAPI(ctx context.Context, hc *http.Client, ts []APITarget) (Result, string) {
	var tried []string
	check := func(t APITarget, p string) (string, bool) {
		a, err := Get(ctx, hc, t.Addr, "", p)
		if err != nil {
			tried = append(tried, "GET "+p+": "+ShortErr(err))
			return "", false
		}
		if a.status != http.StatusOK {
			tried = append(tried, a.describe(p))
			return "", false
		}
		var doc struct {
			OpenAPI string `json:"openapi"`
			Swagger string `json:"swagger"`
		}
		if strings.HasSuffix(p, ".json") || a.ctype == "application/json" {
			if json.Unmarshal(a.body, &doc) != nil || (doc.OpenAPI == "" && doc.Swagger == "") {
				tried = append(tried, a.describe(p)+" but not an OpenAPI document")
				return "", false
			}
			v := "OpenAPI " + doc.OpenAPI
			if doc.OpenAPI == "" {
				v = "Swagger " + doc.Swagger
			}
			return fmt.Sprintf("GET %s → 200 %s", p, v), true
		}
		if !strings.Contains(string(a.body), "openapi:") && !strings.Contains(string(a.body), "swagger:") {
			tried = append(tried, a.describe(p)+" but not an OpenAPI document")
			return "", false
		}
		return fmt.Sprintf("GET %s → 200 (YAML)", p), true
	}
	for _, t := range ts {
		for _, prefix := range t.Paths {
			p := path.Join(prefix, "openapi.json")
			if ev, ok := check(t, p); ok {
				return NewResult("openapi", "", Pass, ev), p
			}
		}
	}
	for _, t := range ts {
		if t.Root == nil {
			continue
		}
		m := linkRE.FindSubmatch(t.Root)
		if m == nil {
			continue
		}
		p := string(m[1])
		if strings.Contains(p, "://") {
			return NewResult("openapi", "", Pass, "the root page links "+p), p
		}
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		if ev, ok := check(t, p); ok {
			return NewResult("openapi", "", Pass, "the root page links "+p+"; "+ev), p
		}
	}
	return NewResult("openapi", "", Warn, strings.Join(tried, "; ")+"; the root page links no OpenAPI document"), ""
}

// healthPaths are the health paths the probe tries, in order.
var healthPaths = []string{"healthz", "health", "livez", "readyz"}

// ProbeHealth looks for a health path that answers 2xx under the
// component's path prefixes.
func ProbeHealth(ctx context.Context, hc *http.Client, t APITarget) Result {
	var tried []string
	for _, prefix := range t.Paths {
		for _, h := range healthPaths {
			p := path.Join(prefix, h)
			a, err := Get(ctx, hc, t.Addr, "", p)
			if err != nil {
				tried = append(tried, p+": "+ShortErr(err))
				continue
			}
			if a.status >= 200 && a.status < 300 {
				return NewResult("health", t.Comp.Name, Pass, fmt.Sprintf("GET %s → %d", p, a.status))
			}
			tried = append(tried, fmt.Sprintf("%s → %d", p, a.status))
		}
	}
	return NewResult("health", t.Comp.Name, Warn, "no health path answers 2xx: "+strings.Join(tried, ", "))
}

// ProbeSibling asks a private component what a sibling would: GET / with
// Host <name>:8080. Any answer but a server error or a refused Host
// header (400, 421) passes: the component need not serve a page.
func ProbeSibling(ctx context.Context, hc *http.Client, addr, name string) Result {
	host := fmt.Sprintf("%s:%d", name, spec.Port)
	a, err := Get(ctx, hc, addr, host, "/")
	if err != nil {
		return NewResult("siblings", name, Fail, fmt.Sprintf("GET http://%s/ failed: %s", host, ShortErr(err)))
	}
	ev := fmt.Sprintf("GET http://%s/ → %d", host, a.status)
	switch {
	case a.status >= 500:
		return NewResult("siblings", name, Fail, ev)
	case a.status == http.StatusBadRequest || a.status == http.StatusMisdirectedRequest:
		return NewResult("siblings", name, Fail, ev+" (the server refuses the Host header "+host+")")
	}
	return NewResult("siblings", name, Pass, ev)
}

// StatusCode is the answer's HTTP status.
func (a *Answer) StatusCode() int { return a.status }
