package docker

import (
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
)

// TestBridgeRulesGolden pins the rules that confine a solution's bridge,
// in iptables -S form.
func TestBridgeRulesGolden(t *testing.T) {
	var b strings.Builder
	for _, r := range bridgeRules("br-0123456789ab") {
		b.WriteString("-A " + r.Chain + " " + strings.Join(r.Spec, " ") + "\n")
	}
	const golden = "testdata/bridge-rules.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if b.String() != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestBridgeName(t *testing.T) {
	for _, tc := range []struct {
		name string
		nw   network.Inspect
		want string
	}{
		{"engine's default", network.Inspect{ID: "0123456789abcdef"}, "br-0123456789ab"},
		{"named by option", network.Inspect{ID: "0123456789abcdef", Options: map[string]string{"com.docker.network.bridge.name": "aim0"}}, "aim0"},
		{"no ID", network.Inspect{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bridgeName(tc.nw); got != tc.want {
				t.Errorf("bridgeName = %q, want %q", got, tc.want)
			}
		})
	}
}
