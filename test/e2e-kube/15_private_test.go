//go:build kube

package e2ekube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

// privateYAML is the test server as a private Solution of provider acme,
// open to one visitor's address, applied with kubectl; it sleeps after
// the run's short idle timeout.
const privateYAML = `apiVersion: aim.dev/v1alpha1
kind: Solution
metadata:
  name: secret
  namespace: ` + ns + `
spec:
  title: Secret
  owner: acme
  visibility: private
  access:
    emails: [Visitor@Example.com]
  components:
    - name: web
      image: %s
      resources: {cpu: 250m, memory: 64Mi}
  scaling:
    idle: %s
  limits:
    rps: "10000"
    burst: 10000
`

// TestPrivateSolution: through the in-cluster gateway, a private Solution
// refuses anonymous clients (401, or a browser sent to sign in) and the
// visitors and providers it does not admit (403) without waking, and
// serves a visitor its access list names, by a personal access token in
// X-Aim-Token that the solution never sees, beside its own Authorization
// header; its owner and the admins too. The API lists it for those alone.
func TestPrivateSolution(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(privateYAML, images["testserver"], idle)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl("apply", "-f", f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = kubectl("delete", "solution", "secret", "-n", ns, "--wait=false") })
	waitState(t, "secret", v1alpha1.StateRunning, 2*time.Minute)
	if out, err := kubectl("get", "solutions", "secret", "-n", ns); err != nil || !regexp.MustCompile(`secret\s+running\s+\S+\s+\d+\s+private\s`).MatchString(out) {
		t.Errorf("kubectl get solutions shows no visibility: %v\n%s", err, out)
	}
	tok := makeTokens(t)
	waitAsleep(t, "secret", idle+2*time.Minute)

	for _, tc := range []struct {
		name     string
		header   []string
		status   int
		location string
	}{
		{"anonymous API client", nil, http.StatusUnauthorized, ""},
		{"anonymous browser", []string{"Accept", "text/html"}, http.StatusFound, "//" + domain + "/auth/guard/signin?return=%2Fheaders&solution=secret"},
		{"forged token", []string{"X-Aim-Token", "aim_forged"}, http.StatusUnauthorized, ""},
		{"a visitor it does not admit", []string{"X-Aim-Token", tok.eve}, http.StatusForbidden, ""},
		{"another provider", []string{"X-Aim-Token", tok.beta}, http.StatusForbidden, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, h := noFollow(t, http.MethodGet, "secret."+domain, "/headers", tc.header...)
			if code != tc.status || h.Get("Location") != tc.location {
				t.Errorf("%d, Location %q: %.300s\nwant %d, Location %q", code, h.Get("Location"), body, tc.status, tc.location)
			}
			if code == http.StatusUnauthorized && !strings.Contains(h.Get("WWW-Authenticate"), "X-Aim-Token") {
				t.Errorf("a 401 without the scheme to use: WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
		})
	}
	// A wake scales the Deployment at once; none may have happened.
	time.Sleep(2 * time.Second)
	stillAsleep(t, "secret")

	t.Run("the browser's way to sign in", func(t *testing.T) {
		code, body, h := noFollow(t, http.MethodGet, domain, "/auth/guard/signin?return=%2Fheaders&solution=secret")
		// The apex's hand-off page, which signs the browser in and back.
		if code != http.StatusFound || h.Get("Location") != "http://"+domain+"/auth/solution?name=secret&return=%2Fheaders" {
			t.Errorf("the apex's sign-in redirect: %d, Location %q: %.200s", code, h.Get("Location"), body)
		}
	})
	t.Run("the guard's questions are not answered from outside", func(t *testing.T) {
		code, body, _ := noFollow(t, http.MethodPost, domain, "/auth/guard/token")
		if code != http.StatusNotFound {
			t.Errorf("POST /auth/guard/token through the gateway: %d %.200s, want 404", code, body)
		}
	})

	t.Run("the visitor it admits", func(t *testing.T) {
		code, body, _ := noFollow(t, http.MethodGet, "secret."+domain, "/headers", "X-Aim-Token", tok.visitor, "Authorization", "Bearer the solution's own")
		if code != http.StatusOK {
			t.Fatalf("%d %.300s", code, body)
		}
		var echo struct{ Headers http.Header }
		if err := json.Unmarshal([]byte(body), &echo); err != nil || echo.Headers == nil {
			t.Fatalf("the test server's /headers: %v\n%s", err, body)
		}
		seen := echo.Headers
		if v := seen.Get("X-Aim-Token"); v != "" {
			t.Errorf("the solution saw X-Aim-Token %q", v)
		}
		if v := seen.Get("Authorization"); v != "Bearer the solution's own" {
			t.Errorf("the solution's own Authorization header: %q", v)
		}
	})
	t.Run("its provider and the admins", func(t *testing.T) {
		for who, secret := range map[string]string{"acme, its owner": tok.acme, "the admin": token} {
			if code, body, _ := noFollow(t, http.MethodGet, "secret."+domain, "/", "X-Aim-Token", secret); code != http.StatusOK {
				t.Errorf("%s: %d %.200s", who, code, body)
			}
		}
	})
	t.Run("the API lists it for those it admits only", func(t *testing.T) {
		for who, secret := range map[string]string{"anonymous": "", "eve": tok.eve, "beta": tok.beta} {
			if out, err := sh(repo, []string{"AIM_SERVER=" + apiURL, "AIM_TOKEN=" + secret, "XDG_CONFIG_HOME=" + os.TempDir()}, aimBin, "ls"); err != nil || strings.Contains(out, "secret") {
				t.Errorf("aim ls as %s shows the private solution: %v\n%s", who, err, out)
			}
		}
		if out, err := sh(repo, []string{"AIM_SERVER=" + apiURL, "AIM_TOKEN=" + tok.visitor, "XDG_CONFIG_HOME=" + os.TempDir()}, aimBin, "ls"); err != nil || !strings.Contains(out, "secret") {
			t.Errorf("aim ls as the admitted visitor does not show it: %v\n%s", err, out)
		}
	})
}

// noFollow sends one request to the gateway for host and returns the
// answer as it is, a redirect included.
func noFollow(t *testing.T, method, host, path string, header ...string) (int, string, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, gatewayURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Transport: httpClient.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// stillAsleep fails unless sol has no pods and its Deployments ask for
// none.
func stillAsleep(t *testing.T, sol string) {
	t.Helper()
	ctx := context.Background()
	if n, err := allPodsOf(ctx, sol); err != nil || n != 0 {
		t.Errorf("%s has %d pods (%v): a refused request woke it", sol, n, err)
	}
	l, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + sol})
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("the Deployments of %s: %d, %v", sol, len(l.Items), err)
	}
	for _, d := range l.Items {
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 0 {
			t.Errorf("Deployment %s asks for %v replicas: a refused request woke it", d.Name, d.Spec.Replicas)
		}
	}
}

// tokens are personal access tokens the test makes with the CLI through
// the in-cluster API: two visitors', one of whom (visitor) the private
// Solution admits, and two providers', one of whom (acme) owns it.
type tokens struct{ visitor, eve, acme, beta string }

// secretLine is the secret `aim token create` prints on a line of its own.
var secretLine = regexp.MustCompile(`(?m)^(aim_\S+)$`)

func makeTokens(t *testing.T) tokens {
	t.Helper()
	for _, p := range []string{"acme", "beta"} {
		addProvider(t, p)
	}
	return tokens{
		visitor: createToken(t, "--role", "visitor", "--email", "visitor@example.com", "--name", "e2e-visitor"),
		eve:     createToken(t, "--role", "visitor", "--email", "eve@example.com", "--name", "e2e-eve"),
		acme:    createToken(t, "--provider", "acme", "--name", "e2e-acme"),
		beta:    createToken(t, "--provider", "beta", "--name", "e2e-beta"),
	}
}

// addProvider adds provider p (or keeps it as it is) with the CLI.
func addProvider(t *testing.T, p string) {
	t.Helper()
	if out, err := aim("provider", "add", p); err != nil {
		t.Fatalf("aim provider add %s: %v\n%s", p, err, out)
	}
}

// createToken makes a token with `aim token create args...` as the admin
// and returns its secret.
func createToken(t *testing.T, args ...string) string {
	t.Helper()
	out, err := aim(append([]string{"token", "create"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	m := secretLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("aim token create %s printed no secret:\n%s", strings.Join(args, " "), out)
	}
	return m[1]
}
