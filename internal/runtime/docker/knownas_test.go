package docker

import (
	"testing"

	"github.com/distribution/reference"
)

// TestKnownAs: an image is on the engine under a name only when its tags
// or digests hold that name, as the engine writes them (familiar names,
// :latest implied); an ID prefix the engine would resolve is not a name
// it holds.
func TestKnownAs(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tags := []string{"aim-test/server:e2e", "nginx:latest", "127.0.0.1:5000/acme/web:1"}
	digests := []string{"127.0.0.1:5000/acme/web@" + digest}
	for _, tc := range []struct {
		ref  string
		want bool
	}{
		{"aim-test/server:e2e", true},
		{"docker.io/aim-test/server:e2e", true},
		{"nginx", true},
		{"docker.io/library/nginx:latest", true},
		{"127.0.0.1:5000/acme/web:1", true},
		{"127.0.0.1:5000/acme/web@" + digest, true},
		{"localhost:5000/acme/web:1", false},
		{"127.0.0.1:5000/acme/web:2", false},
		{"aim-test/server", false},
		{"0123456789ab", false},
		{"other/web@" + digest, false},
	} {
		named, err := reference.ParseNormalizedNamed(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		if got := knownAs(tags, digests, named); got != tc.want {
			t.Errorf("knownAs(%s) = %v, want %v", tc.ref, got, tc.want)
		}
	}
}
