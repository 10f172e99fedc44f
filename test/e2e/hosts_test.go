package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestHostConfusion (suite case 1, hosts): only the apex's own name, a
// solution's subdomain and the loopback names the local CLI uses reach
// anything. A deeper subdomain of a solution, a name pointed at the
// server by someone else (DNS rebinding) and a name that merely ends like
// the domain get 421 from a real aim serve, never the API, the catalog
// or a solution's answer.
func TestHostConfusion(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "evilsol", "--image", TestImage)
	get := func(host, path string, auth bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
		req.Host = host
		if auth {
			req.Header.Set("Authorization", "Bearer "+a.Token())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s with Host %s: %v", path, host, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(b)
	}
	// The control: the same requests with the right names are answered,
	// so a 421 below is the Host's doing.
	if code, body := get("localhost", "/api/v1/solutions", true); code != 200 || !strings.Contains(body, "evilsol") {
		t.Fatalf("the apex's API with its own name: %d %.200s", code, body)
	}
	if code, _ := a.Get("evilsol", "/"); code != 200 {
		t.Fatalf("the solution at its own name: %d", code)
	}
	for _, host := range []string{
		"engine.evilsol.localhost", // deeper than a solution
		"x.y.evilsol.localhost",
		"rebind.attacker.example", // a name someone else points here
		"attacker.example:8080",
		"evillocalhost", // ends like the domain, is not under it
		"localhost.attacker.example",
	} {
		for _, path := range []string{"/", "/api/v1/solutions", "/api/v1/me"} {
			code, body := get(host, path, true)
			if code != http.StatusMisdirectedRequest {
				t.Errorf("Host %s %s: %d, want 421\n%.200s", host, path, code, body)
			}
			if strings.Contains(body, "evilsol") {
				t.Errorf("Host %s %s: the answer names the solution: %.200s", host, path, body)
			}
		}
	}
}
