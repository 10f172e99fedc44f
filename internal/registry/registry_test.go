package registry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestHostOf(t *testing.T) {
	for _, tc := range []struct {
		name, ref, want string
	}{
		{"a bare name is Docker Hub's library", "nginx", "docker.io"},
		{"a user's repository is Docker Hub's", "acme/model:1", "docker.io"},
		{"docker.io named", "docker.io/acme/model", "docker.io"},
		{"Hub's index alias", "index.docker.io/acme/model", "docker.io"},
		{"a host with a dot", "ghcr.io/acme/model:2", "ghcr.io"},
		{"a host with a port", "127.0.0.1:5000/aim/web:1", "127.0.0.1:5000"},
		{"localhost alone is a host", "localhost/aim/registry:3.1.2", "localhost"},
		{"localhost with a port", "localhost:5000/x", "localhost:5000"},
		{"a digest", "registry.example.com:443/a/b@sha256:" + sixtyFour, "registry.example.com:443"},
		{"upper case in the host", "Registry.Example.com/a", "registry.example.com"},
		{"a first part without dot or port is a Hub user", "acme:5000x/b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HostOf(tc.ref)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("HostOf(%q) = %q, want an error", tc.ref, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("HostOf(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
			}
		})
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestHostOfRefusesIDs(t *testing.T) {
	// An image ID names whatever the engine holds, another provider's
	// pulled image included: aim takes names only.
	if h, err := HostOf(sixtyFour); err == nil {
		t.Fatalf("HostOf(an image ID) = %q, want an error", h)
	}
	if h, err := HostOf("sha256:" + sixtyFour); err == nil {
		t.Fatalf("HostOf(sha256:ID) = %q, want an error", h)
	}
}

func TestParseHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ghcr.io", "ghcr.io"},
		{"GHCR.io", "ghcr.io"},
		{"https://registry.example.com/v2/", "registry.example.com"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"localhost", "localhost"},
		{"docker.io", "docker.io"},
		{"https://index.docker.io/v1/", "docker.io"},
		{"registry-1.docker.io", "docker.io"},
		{"myregistry", ""},
		{"", ""},
		{"https://", ""},
		{"bad host.io", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseHost(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParseHost(%q) = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseHost(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestDockerConfigJSON(t *testing.T) {
	got, err := DockerConfigJSON([]Login{
		{Host: "ghcr.io", Username: "acme-bot", Password: "ghp_secret"},
		{Host: "docker.io", Username: "acme", Password: "hub:pass"},
		{Host: "127.0.0.1:5000", Username: "u", Password: "p"},
	})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "dockerconfig.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	empty, err := DockerConfigJSON(nil)
	if err != nil || string(empty) != "{\n  \"auths\": {}\n}" {
		t.Errorf("no logins: %s, %v", empty, err)
	}
}

func TestEngineAuth(t *testing.T) {
	s, err := EngineAuth(Login{Host: "docker.io", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got["username"] != "u" || got["password"] != "p" || got["serveraddress"] != "https://index.docker.io/v1/" {
		t.Errorf("engine auth: %v", got)
	}
}

func TestIsRefusal(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{`Error response from daemon: Head "http://127.0.0.1:5000/v2/acme/server/manifests/1": no basic auth credentials`, true},
		{"pull access denied for acme/private, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", true},
		// containerd, as the kubelet reports it.
		{`failed to pull and unpack image "r.example.com/a:1": failed to resolve reference "r.example.com/a:1": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized`, true},
		{`failed to resolve reference "r.example.com/a:1": pulling from host r.example.com failed with status code [manifests 1]: 401 Unauthorized`, true},
		{"manifest for r.example.com/a:1 not found: manifest unknown", false},
		{`dial tcp 127.0.0.1:5000: connect: connection refused`, false},
	} {
		if got := IsRefusal(tc.msg); got != tc.want {
			t.Errorf("IsRefusal(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}
