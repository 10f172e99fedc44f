package spec

import "testing"

// TestReadyAnswer pins the readiness rule both runtimes and the gateway's
// wake probe apply to the answer to GET ReadyPath.
func TestReadyAnswer(t *testing.T) {
	yes, no := true, false
	public := Component{Public: &yes}
	private := Component{Public: &no}
	withPath := Component{Public: &yes, Ready: Ready{Path: "/-/ready"}}
	for _, tc := range []struct {
		name string
		c    Component
		code int
		want bool
		path string
	}{
		{"public 200", public, 200, true, "/"},
		{"public 404", public, 404, true, "/"},
		{"public 503", public, 503, false, "/"},
		{"private 503", private, 503, true, "/"},
		{"ready path 200", withPath, 200, true, "/-/ready"},
		{"ready path 204", withPath, 204, true, "/-/ready"},
		{"ready path redirect", withPath, 302, false, "/-/ready"},
		{"ready path 404", withPath, 404, false, "/-/ready"},
		{"ready path 503", withPath, 503, false, "/-/ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.ReadyAnswer(tc.code); got != tc.want {
				t.Errorf("ReadyAnswer(%d) = %v, want %v", tc.code, got, tc.want)
			}
			if got := tc.c.ReadyPath(); got != tc.path {
				t.Errorf("ReadyPath() = %q, want %q", got, tc.path)
			}
		})
	}
}
