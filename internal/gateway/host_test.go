package gateway

import (
	"strings"
	"testing"
)

// A Host names a solution, or the apex, or neither; never both, and a
// solution's name is exactly the label before the domain.
func FuzzHost(f *testing.F) {
	for _, h := range []string{"demo.aim.test", "aim.test", "AIM.TEST.", "127.0.0.1:8080", "[::1]:80",
		"x.demo.aim.test", "demo.aim.test.evil", "evilaim.test", ".aim.test", "demo.aim.test:443"} {
		f.Add(h)
	}
	g := &Gateway{domain: "aim.test", suffix: ".aim.test"}
	f.Fuzz(func(t *testing.T, host string) {
		name := g.solutionName(host)
		if name == "" {
			return
		}
		if g.apexHost(host) {
			t.Fatalf("%q is both solution %q and the apex", host, name)
		}
		if strings.Contains(name, ".") || hostName(host) != name+".aim.test" {
			t.Fatalf("%q names solution %q", host, name)
		}
	})
}
