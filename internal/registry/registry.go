// Package registry knows the container registries that image: components
// name: which registry an image reference pulls from (docker.io when it
// names none), and how a provider's login to one is handed to Docker's
// engine (an X-Registry-Auth value) and to the kubelet (a
// kubernetes.io/dockerconfigjson Secret's data). It holds no state.
package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// DockerHub is the host of images whose reference names no registry.
const DockerHub = "docker.io"

// dockerHubKey is Docker Hub's key in a docker config: the kubelet and
// the Docker CLI both look Hub images up under it.
const dockerHubKey = "https://index.docker.io/v1/"

// Login is a provider's credentials for one registry.
type Login struct {
	// Host is the registry, as ParseHost gives it: "docker.io",
	// "ghcr.io", "127.0.0.1:5000".
	Host     string
	Username string
	Password string
}

// HostOf returns the registry ref pulls from: the part before the first
// "/" when it is a host (has a dot or a port, or is localhost), else
// docker.io, as Docker decides. A reference that is not a name (an image
// ID, a malformed one) is an error: aim pulls and matches only by name.
func HostOf(ref string) (string, error) {
	if strings.HasPrefix(ref, "sha256:") {
		return "", fmt.Errorf("%q is an image ID; name the image by registry/repository[:tag][@digest]", ref)
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference (registry/repository[:tag][@digest]): %w", ref, err)
	}
	return canonical(reference.Domain(named)), nil
}

// RepositoryOf returns the registry and the repository path ref names
// (ghcr.io and acme/app for ghcr.io/acme/app:1), as HostOf decides the host.
func RepositoryOf(ref string) (host, path string, err error) {
	host, err = HostOf(ref)
	if err != nil {
		return "", "", err
	}
	named, _ := reference.ParseNormalizedNamed(ref) // HostOf parsed it
	return host, reference.Path(named), nil
}

// ParseHost checks a registry host as someone types it for a login, and
// returns it as HostOf names it: lower case, without a scheme or a path,
// Docker Hub's aliases as docker.io.
func ParseHost(s string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(s))
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	if i := strings.IndexByte(h, '/'); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "", fmt.Errorf("%q names no registry host (e.g. ghcr.io, registry.example.com:5000)", s)
	}
	h = canonical(h)
	if h == DockerHub {
		return h, nil
	}
	named, err := reference.ParseNormalizedNamed(h + "/x")
	if err != nil || reference.Domain(named) != h {
		return "", fmt.Errorf("%q is not a registry host: it needs a dot or a port, or to be localhost (e.g. ghcr.io, 127.0.0.1:5000)", s)
	}
	return h, nil
}

// canonical names Docker Hub by one name whatever alias is used.
func canonical(host string) string {
	switch h := strings.ToLower(host); h {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return DockerHub
	default:
		return h
	}
}

// EngineAuth is l as Docker's engine takes it with a pull (the
// X-Registry-Auth header: base64url JSON of the engine API's AuthConfig,
// written here so that only the runtime links Docker's packages).
func EngineAuth(l Login) (string, error) {
	addr := l.Host
	if addr == DockerHub {
		addr = dockerHubKey
	}
	b, err := json.Marshal(struct {
		Username      string `json:"username"`
		Password      string `json:"password"`
		ServerAddress string `json:"serveraddress"`
	}{l.Username, l.Password, addr})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// DockerConfigJSON renders logins as the .dockerconfigjson of a
// kubernetes.io/dockerconfigjson Secret, the form imagePullSecrets take,
// in the order of their hosts (the same logins give the same bytes, so
// that rewriting the Secret changes nothing).
func DockerConfigJSON(logins []Login) ([]byte, error) {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	auths := map[string]entry{}
	sorted := append([]Login(nil), logins...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Host < sorted[j].Host })
	for _, l := range sorted {
		key := l.Host
		if key == DockerHub {
			key = dockerHubKey
		}
		auths[key] = entry{Username: l.Username, Password: l.Password,
			Auth: base64.StdEncoding.EncodeToString([]byte(l.Username + ":" + l.Password))}
	}
	// encoding/json writes map keys sorted.
	return json.MarshalIndent(map[string]any{"auths": auths}, "", "  ")
}

// ErrUnauthorized is a registry's refusal of a pull for want of
// credentials, or of the ones given.
var ErrUnauthorized = errors.New("the registry wants a login")

// refusals are how registries and Docker's engine word a pull refused
// for credentials; the engine keeps no error type for it through its API.
var refusals = []string{"no basic auth credentials", "unauthorized", "authentication required", "access denied", "pull access denied", "may require 'docker login'", "denied: ", "failed to authorize"}

// IsRefusal tells whether msg, an engine's pull error, is a refusal for
// credentials.
func IsRefusal(msg string) bool {
	m := strings.ToLower(msg)
	for _, r := range refusals {
		if strings.Contains(m, r) {
			return true
		}
	}
	return false
}
