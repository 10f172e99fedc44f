// Package buildgate is the registry gate build pods push through: an
// HTTP reverse proxy to the registry that holds the registry's credential
// itself and lets each build, by a token of its own, push and pull only
// its own repository and pull what is outside the builds' root (base
// images). No build pod holds the registry's credential, so a tenant's
// RUN step that reads whatever buildctl holds gets a token scoped to its
// own build (docs/security.md, "Builds in a cluster").
package buildgate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// User is the user name of a build's Basic credential; its password is
// the build's token.
const User = "build"

// Grants tells which repository a build's token may push to.
type Grants interface {
	// Repository returns the repository path (aim/<solution>/<component>)
	// of the running build whose token tok is, or false.
	Repository(tok string) (string, bool)
}

// Gate proxies the registry API for builds.
type Gate struct {
	upstream *url.URL
	auth     string // the Authorization header sent upstream, "" for none
	root     string // repositories under it are the builds'
	grants   Grants
	proxy    *httputil.ReverseProxy
	log      *slog.Logger
}

// Config makes a Gate.
type Config struct {
	// Upstream is the registry's base URL, http://host:port or
	// https://host. A path is refused: repository names are forwarded as
	// they are.
	Upstream string
	// Authorization is the header the gate sends upstream with every
	// request (e.g. "Basic …"); see DockerConfigAuth.
	Authorization string
	// Root is the path under which only builds push ("aim/"): a build
	// may touch its own repository there and nothing else under it.
	Root   string
	Grants Grants
	Logger *slog.Logger
}

// New makes a Gate, or says what is wrong with cfg.
func New(cfg Config) (*Gate, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("buildgate: upstream %q: want http://host[:port] or https://host[:port]", cfg.Upstream)
	}
	if strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		return nil, fmt.Errorf("buildgate: upstream %q: a registry under a path is not supported (repository names are forwarded as they are)", cfg.Upstream)
	}
	if cfg.Grants == nil || !strings.HasSuffix(cfg.Root, "/") {
		return nil, fmt.Errorf("buildgate: Grants and a Root ending in / are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	u.Path = ""
	g := &Gate{upstream: u, auth: cfg.Authorization, root: cfg.Root, grants: cfg.Grants, log: cfg.Logger}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        g.rewrite,
		ModifyResponse: g.modifyResponse,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		// Blobs stream through in both directions: ReverseProxy copies
		// bodies as they come, and nothing here reads one whole.
	}
	return g, nil
}

// DockerConfigAuth reads a Docker config file (config.json, or a
// kubernetes.io/dockerconfigjson Secret's .dockerconfigjson) and returns
// the Authorization header for host: its "auth", or its username and
// password.
func DockerConfigAuth(file, host string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading the registry's credentials: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth, Username, Password string
		} `json:"auths"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s: not a Docker config (auths): %w", file, err)
	}
	for h, a := range cfg.Auths {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://"), "/")
		if !strings.EqualFold(h, host) {
			continue
		}
		if a.Auth != "" {
			return "Basic " + a.Auth, nil
		}
		if a.Username != "" {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)), nil
		}
	}
	return "", fmt.Errorf("%s has no credentials for %s", file, host)
}

// The routes of the registry API (distribution-spec), with Distribution's
// grammar for names, tags, digests and upload IDs. A path is taken apart
// as the registry takes it apart, so the name checked here is the name the
// registry acts on; a path that is none of these is refused.
var (
	component = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	name      = component + `(?:/` + component + `)*`
	tag       = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	digest    = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	routes    = []struct {
		kind string
		re   *regexp.Regexp
	}{
		{"manifest", regexp.MustCompile(`^/v2/(` + name + `)/manifests/(?:` + tag + `|` + digest + `)$`)},
		{"blob", regexp.MustCompile(`^/v2/(` + name + `)/blobs/` + digest + `$`)},
		{"upload", regexp.MustCompile(`^/v2/(` + name + `)/blobs/uploads/$`)},
		{"upload", regexp.MustCompile(`^/v2/(` + name + `)/blobs/uploads/[A-Za-z0-9_.=-]+$`)},
		{"tags", regexp.MustCompile(`^/v2/(` + name + `)/tags/list$`)},
		{"referrers", regexp.MustCompile(`^/v2/(` + name + `)/referrers/` + digest + `$`)},
	}
	repoName = regexp.MustCompile(`^` + name + `$`)
)

// Refusal is why a request is refused: a registry error code and message.
type Refusal struct {
	Status  int
	Code    string
	Message string
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Message }

func denied(format string, a ...any) *Refusal {
	return &Refusal{http.StatusForbidden, "DENIED", fmt.Sprintf(format, a...)}
}

// Check says whether the build that owns repository own may make the
// request (method, the URL's escaped path, its query), and returns the
// query to forward (a cross-repository mount from a repository the build
// may not read is dropped from it).
func Check(root, own, method, escapedPath string, query url.Values) (url.Values, *Refusal) {
	// The path is checked as sent: no percent-encoding (nothing in a
	// registry path needs it; %2F would be one name to this check and
	// another to a proxy or registry that decodes it), no dot segments,
	// no empty segments.
	if strings.Contains(escapedPath, "%") {
		return nil, denied("path %q: percent-encoding is not accepted", escapedPath)
	}
	for seg := range strings.SplitSeq(strings.TrimPrefix(escapedPath, "/"), "/") {
		if seg == "." || seg == ".." {
			return nil, denied("path %q: dot segments are not accepted", escapedPath)
		}
	}
	if strings.Contains(strings.TrimSuffix(escapedPath, "/"), "//") {
		return nil, denied("path %q: empty segments are not accepted", escapedPath)
	}
	read := method == http.MethodGet || method == http.MethodHead
	if escapedPath == "/v2/" || escapedPath == "/v2" {
		if !read {
			return nil, denied("%s %s is not a registry operation", method, escapedPath)
		}
		return query, nil
	}
	if escapedPath == "/v2/_catalog" {
		return nil, denied("a build may not list the registry's repositories")
	}
	kind, repo := "", ""
	for _, r := range routes {
		if m := r.re.FindStringSubmatch(escapedPath); m != nil {
			kind, repo = r.kind, m[1]
			break
		}
	}
	if kind == "" {
		return nil, denied("path %q is not a registry route this gate serves", escapedPath)
	}
	if method == http.MethodDelete {
		return nil, denied("a build may not delete from the registry")
	}
	switch {
	case repo == own:
	case mayRead(root, repo):
		if !read {
			return nil, denied("repository %s: a build may push only to its own repository %s", repo, own)
		}
	default:
		return nil, denied("repository %s is another build's: a build may read and push only its own, %s", repo, own)
	}
	if kind == "upload" && method == http.MethodPost && (query.Has("mount") || query.Has("from")) {
		// A cross-repository mount makes a blob of from appear in own
		// without the build having the blob: from another solution's
		// repository it would copy that solution's layers into one the
		// build may then read. Such a mount is stripped, not refused:
		// the registry then opens a plain upload (202), and the client
		// uploads the blob itself, as the spec has it when a mount
		// fails.
		from := query["from"]
		if len(from) == 1 && len(query["mount"]) == 1 && (from[0] == own || (repoName.MatchString(from[0]) && mayRead(root, from[0]))) {
			return query, nil
		}
		q := url.Values{}
		for k, v := range query {
			if k != "mount" && k != "from" {
				q[k] = v
			}
		}
		return q, nil
	}
	return query, nil
}

// mayRead is true for a repository outside the builds' root (base images
// an admin pushed, Docker Hub names builds.mirrorDockerHub resolves).
func mayRead(root, repo string) bool {
	return repo != strings.TrimSuffix(root, "/") && !strings.HasPrefix(repo, root)
}

type ctxKey struct{}

type forward struct {
	path  string
	query url.Values
}

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, tok, ok := r.BasicAuth()
	own := ""
	if ok && user == User && tok != "" {
		own, ok = g.grants.Repository(tok)
	} else {
		ok = false
	}
	if !ok {
		// Clients ping /v2/ without credentials first, and send them on
		// this challenge.
		w.Header().Set("WWW-Authenticate", `Basic realm="aim build registry gate"`)
		writeError(w, &Refusal{http.StatusUnauthorized, "UNAUTHORIZED", "authentication required: a running build's token"})
		return
	}
	path := r.URL.EscapedPath()
	q, refused := Check(g.root, own, r.Method, path, r.URL.Query())
	if refused != nil {
		g.log.Info("build registry gate: refused", "repository", own, "method", r.Method, "path", path, "why", refused.Message)
		writeError(w, refused)
		return
	}
	fw := &forward{path: path, query: q}
	g.proxy.ServeHTTP(w, r.WithContext(contextWith(r, fw)))
}

func (g *Gate) rewrite(pr *httputil.ProxyRequest) {
	fw := fromContext(pr.In)
	pr.SetURL(g.upstream)
	// What was checked is what is forwarded: the checked path, not a
	// re-encoding of a decoded one.
	pr.Out.URL.Path, pr.Out.URL.RawPath = fw.path, ""
	pr.Out.URL.RawQuery = fw.query.Encode()
	// X-Forwarded-Host and -Proto name the gate: Distribution builds the
	// absolute URLs of its answers (an upload's Location) from them, so
	// the client's next request comes back here. The Host header is the
	// registry's own (SetURL), which a registry behind a virtual host or
	// TLS needs; modifyResponse catches a Location that names it anyway.
	pr.SetXForwarded()
	pr.Out.Header.Del("Authorization")
	pr.Out.Header.Del("Cookie")
	if g.auth != "" {
		pr.Out.Header.Set("Authorization", g.auth)
	}
}

// modifyResponse points a Location that names the registry at the gate;
// a Location elsewhere (a blob's storage, signed) is left.
func (g *Gate) modifyResponse(res *http.Response) error {
	loc := res.Header.Get("Location")
	if loc == "" {
		return nil
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.EqualFold(u.Host, g.upstream.Host) {
		return nil
	}
	u.Scheme, u.Host = "http", res.Request.Header.Get("X-Forwarded-Host")
	if res.Request.Header.Get("X-Forwarded-Proto") == "https" {
		u.Scheme = "https"
	}
	res.Header.Set("Location", u.String())
	return nil
}

// writeError answers as a registry does (distribution-spec's error body).
func writeError(w http.ResponseWriter, r *Refusal) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	w.WriteHeader(r.Status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": r.Code, "message": r.Message}}})
}

func contextWith(r *http.Request, fw *forward) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, fw)
}

func fromContext(r *http.Request) *forward {
	return r.Context().Value(ctxKey{}).(*forward)
}
