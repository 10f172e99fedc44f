package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliStdin is CLI with stdin.
func (a *Aim) cliStdin(stdin string, args ...string) (string, string, error) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aimBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+a.Token())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// apiGet is an admin's GET of an API path, its body.
func (a *Aim) apiGet(path string) string {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		a.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestSecretReachesOnlyTheEnvironment (issue 16, acceptance 3): a deploy
// naming a secret that is not set fails at its line before anything
// starts; once set, the secret is in the component's environment and in
// no API answer, no line of aim serve's log, no label and not in clear in
// the store's file; set again, it reaches the restarted component, also
// after aim serve itself restarted.
func TestSecretReachesOnlyTheEnvironment(t *testing.T) {
	a := StartAim(t)
	const v1, v2 = "s3cr3t-first-4f9a2c7e", "s3cr3t-second-b81d0e55"
	dir := writeSolution(t, "name: vault\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env:\n      MODE: plain\n      GREETING: {secret: greeting}\n", nil)

	_, errOut, err := a.CLI("deploy", "-q", dir)
	if err == nil || !strings.Contains(errOut, `aim.yaml:7: components[0].env.GREETING: secret "greeting" is not set for solution vault`) {
		t.Fatalf("a deploy naming a secret not set: %v\n%s", err, errOut)
	}
	if cs := a.Containers("vault"); len(cs) != 0 {
		t.Fatalf("the refused deploy left %d containers", len(cs))
	}

	if out, errOut, err := a.cliStdin(v1+"\n", "secret", "set", "vault", "greeting"); err != nil {
		t.Fatalf("aim secret set: %v\n%s%s", err, out, errOut)
	}
	a.MustCLI("deploy", "-q", dir)
	if code, body := a.Get("vault", "/whoami"); code != 200 || !strings.Contains(body, `"greeting":"`+v1+`"`) {
		t.Fatalf("the component's environment: %d %s", code, body)
	}

	f := filepath.Join(t.TempDir(), "greeting")
	if err := os.WriteFile(f, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	out := a.MustCLI("secret", "set", "vault", "greeting", "--from-file", f)
	if !strings.Contains(out, "restarted with it: web") {
		t.Errorf("aim secret set does not say it restarted web:\n%s", out)
	}
	if code, body := a.Get("vault", "/whoami"); code != 200 || !strings.Contains(body, `"greeting":"`+v2+`"`) {
		t.Fatalf("after the rotation: %d %s", code, body)
	}
	ls := a.MustCLI("secret", "ls", "vault")
	if !strings.Contains(ls, "greeting") || !strings.Contains(ls, "web") {
		t.Errorf("aim secret ls:\n%s", ls)
	}

	// Everywhere aim shows or keeps something, neither value is.
	seen := map[string]string{
		"aim secret ls": ls,
		"aim status":    a.MustCLI("status", "vault"),
		"aim ls":        a.MustCLI("ls"),
		"aim history":   a.MustCLI("history", "vault"),
	}
	for _, p := range []string{"/api/v1/solutions", "/api/v1/solutions/vault", "/api/v1/solutions/vault/secrets", "/api/v1/solutions/vault/history"} {
		seen["GET "+p] = a.apiGet(p)
	}
	for _, c := range a.Containers("vault") {
		var labels strings.Builder
		for k, v := range c.Labels {
			labels.WriteString(k + "=" + v + "\n")
		}
		seen["labels of "+c.Names[0]] = labels.String()
	}
	files, _ := filepath.Glob(filepath.Join(a.Data, "aim.db*"))
	if len(files) == 0 {
		t.Fatal("no store file in the data directory")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		seen["the bytes of "+filepath.Base(p)] = string(b)
	}
	seen["aim serve's log"] = a.logs.String()
	for where, s := range seen {
		for _, v := range []string{v1, v2} {
			if strings.Contains(s, v) {
				t.Errorf("%s holds the secret %q", where, v)
			}
		}
	}
	fi, err := os.Stat(filepath.Join(a.Data, "secret.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the secret key file: %v %v, want mode 0600", fi, err)
	}

	// After a restart of aim serve, the key file opens what it sealed:
	// the adopted solution takes a value set again.
	a.Kill()
	a.Start()
	const v3 = "s3cr3t-third-09c4d2aa"
	if out, errOut, err := a.cliStdin(v3, "secret", "set", "vault", "greeting"); err != nil || !strings.Contains(out, "restarted with it: web") {
		t.Fatalf("aim secret set after a restart: %v\n%s%s", err, out, errOut)
	}
	if code, body := a.Get("vault", "/whoami"); code != 200 || !strings.Contains(body, `"greeting":"`+v3+`"`) {
		t.Fatalf("after a restart and a rotation: %d %s", code, body)
	}

	// A secret in use is not removed from under its component.
	if _, errOut, err := a.CLI("secret", "rm", "vault", "greeting"); err == nil || !strings.Contains(errOut, "used by component web") {
		t.Errorf("removing a secret in use: %v %s", err, errOut)
	}
}
