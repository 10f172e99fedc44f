package e2e

import (
	"strings"
	"testing"
)

// TestProvidersOwnTheirSolutions runs the roles end to end, through the
// aim binary: an admin adds two providers and gives each a token; one
// deploys a solution, which is then its own; the other can neither deploy
// over it nor remove it, wake it or read its logs, and is told why.
func TestProvidersOwnTheirSolutions(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("provider", "add", "acme", "--display-name", "ACME Labs")
	a.MustCLI("provider", "add", "beta")
	token := func(provider string) string {
		out, errOut, err := a.CLI("token", "create", "--provider", provider, "--name", "e2e", "--expires", "1d")
		if err != nil || !strings.Contains(errOut, "not shown again") {
			t.Fatalf("token create: %v\n%s%s", err, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	acme, beta := token("acme"), token("beta")
	as := func(tok string, args ...string) (string, error) {
		t.Helper()
		out, errOut, err := a.CLIAs(tok, args...)
		return out + errOut, err
	}

	if out, err := as(acme, "whoami"); err != nil || !strings.Contains(out, "Provider:  acme") {
		t.Errorf("whoami as acme: %v\n%s", err, out)
	}
	if out, err := as(acme, "deploy", "-q", "--name", "hello", "--image", TestImage); err != nil {
		t.Fatalf("acme's deploy: %v\n%s", err, out)
	}
	if w := getWhoami(t, a, "hello", "/whoami"); w.Solution != "hello" {
		t.Errorf("hello does not answer: %+v", w)
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"deploy", "-q", "--name", "hello", "--image", TestImage}, "solution hello belongs to another provider"},
		{[]string{"rm", "hello"}, "removing solution hello needs the token of the provider it belongs to, or an admin token; yours is a provider token for beta"},
		{[]string{"wake", "hello"}, "waking solution hello needs the token"},
		{[]string{"logs", "hello"}, "reading the logs of solution hello needs the token"},
		{[]string{"provider", "ls"}, "listing providers needs an admin token; yours is a provider token for beta"},
	} {
		out, err := as(beta, c.args...)
		if err == nil || !strings.Contains(out, c.says) || strings.Contains(out, "acme") {
			t.Errorf("aim %s as beta: %v\n%s\nwant a refusal saying %q and naming no other provider", strings.Join(c.args, " "), err, out, c.says)
		}
	}
	if out, err := as("", "rm", "hello"); err == nil || !strings.Contains(out, "the request carried none") {
		t.Errorf("rm with no token: %v\n%s", err, out)
	}
	if len(a.Containers("hello")) == 0 {
		t.Fatal("a refused call removed hello")
	}
	if out, err := as(acme, "logs", "hello"); err != nil || !strings.Contains(out, "listening on :8080") {
		t.Errorf("acme's logs: %v\n%s", err, out)
	}
	if out, _, err := a.CLI("provider", "rm", "acme"); err == nil {
		t.Errorf("removing a provider that owns hello: %s", out)
	}
	if out, err := as(acme, "rm", "hello"); err != nil {
		t.Errorf("acme's rm: %v\n%s", err, out)
	}
	a.MustCLI("provider", "rm", "acme")
	if out, err := as(acme, "whoami"); err == nil || !strings.Contains(out, "unknown") {
		t.Errorf("a removed provider's token still works: %s", out)
	}
}
