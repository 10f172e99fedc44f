package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"github.com/aimhub/aim/internal/registry/logincheck"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/aimhub/aim/internal/registry"
)

// registryImage is the CNCF Distribution registry images/build.sh builds.
const registryImage = "localhost/aim/registry:3.1.2"

func dockerRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// privateRegistry runs the registry behind an htpasswd login of user and
// password, published on 127.0.0.1 (which the engine takes over plain
// HTTP), and returns its host:port.
func privateRegistry(t *testing.T, user, password string) string {
	t.Helper()
	if out, err := exec.Command("../../images/build.sh", "registry").CombinedOutput(); err != nil {
		t.Fatalf("images/build.sh registry: %v\n%s", err, out)
	}
	b := make([]byte, 4)
	rand.Read(b)
	name := "aim-e2e-registry-" + hex.EncodeToString(b)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	auth := t.TempDir()
	if err := os.WriteFile(filepath.Join(auth, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dockerRun(t, "run", "-d", "--name", name,
		"--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-v", auth+":/etc/registry-auth:ro",
		"-e", "REGISTRY_AUTH=htpasswd", "-e", "REGISTRY_AUTH_HTPASSWD_REALM=aim",
		"-e", "REGISTRY_AUTH_HTPASSWD_PATH=/etc/registry-auth/htpasswd",
		"-e", "REGISTRY_HTTP_SECRET=e2e-"+name,
		"-p", "127.0.0.1::5000", registryImage)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "30", name).CombinedOutput()
			t.Logf("registry's last lines:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", "-v", name).Run()
	})
	_, port, err := net.SplitHostPort(strings.Split(dockerRun(t, "port", name, "5000/tcp"), "\n")[0])
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + port
}

// pushPrivate pushes TestImage to host as ref with a docker login of its
// own, and removes ref from the engine again.
func pushPrivate(t *testing.T, host, ref, user, password string) {
	t.Helper()
	config := t.TempDir()
	var out []byte
	var err error
	// The registry may not listen yet: a few tries, one a second.
	for range 20 {
		cmd := exec.Command("docker", "--config", config, "login", "--username", user, "--password-stdin", host)
		cmd.Stdin = strings.NewReader(password)
		if out, err = cmd.CombinedOutput(); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("docker login %s: %v\n%s", host, err, out)
	}
	dockerRun(t, "tag", TestImage, ref)
	dockerRun(t, "--config", config, "push", ref)
	dockerRun(t, "rmi", ref)
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", ref).Run() })
}

// cliStdinAs is CLI with tok and stdin.
func (a *Aim) cliStdinAs(tok, stdin string, args ...string) (string, string, error) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aimBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+tok)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// TestPrivateRegistry (issue 17, acceptance 4): an image: component from
// a registry that wants a login fails to deploy, naming the registry and
// the missing `aim registry login`; a login the registry refuses is not
// kept; after the provider's login it
// deploys and answers, and so does `aim deploy --image`. Another
// provider naming the same image is refused, though the engine now has
// it: the login is acme's, and the image is pulled afresh for beta.
func TestPrivateRegistry(t *testing.T) {
	a := StartAim(t)
	const user, password = "acme-bot", "pw-private-9c41e7"
	host := privateRegistry(t, user, password)
	ref := host + "/acme/server:1"
	pushPrivate(t, host, ref, user, password)
	acme := providerToken(t, a, "acme", "")
	beta := providerToken(t, a, "beta", "")
	dir := writeSolution(t, "name: shop\ncomponents:\n  - name: web\n    image: "+ref+"\n", nil)
	login := "aim registry login " + host

	_, errOut, err := a.CLIAs(acme, "deploy", "-q", dir)
	if err == nil || !strings.Contains(errOut, "registry "+host+" wants a login") || !strings.Contains(errOut, login) {
		t.Fatalf("a deploy without a login: %v\n%s", err, errOut)
	}
	t.Logf("without a login: %s", errOut)

	if _, errOut, err := a.cliStdinAs(acme, password+"\n", "registry", "login", host, "--username", user); err == nil ||
		!strings.Contains(errOut, "--password-stdin") {
		t.Fatalf("a login without --password-stdin: %v\n%s", err, errOut)
	}
	if _, errOut, err := a.cliStdinAs(acme, "wrong\n", "registry", "login", host, "--username", user, "--password-stdin"); err == nil ||
		!strings.Contains(errOut, "nothing was kept") {
		t.Fatalf("a login with a wrong password: %v\n%s", err, errOut)
	}
	if ls := asProvider(t, a, acme, "registry", "ls"); strings.Contains(ls, host) {
		t.Fatalf("the refused login was kept:\n%s", ls)
	}
	if out, errOut, err := a.cliStdinAs(acme, password+"\n", "registry", "login", host, "--username", user, "--password-stdin"); err != nil {
		t.Fatalf("aim registry login: %v\n%s%s", err, out, errOut)
	}
	ls := asProvider(t, a, acme, "registry", "ls")
	if !strings.Contains(ls, host) || !strings.Contains(ls, user) || strings.Contains(ls, password) {
		t.Fatalf("aim registry ls:\n%s", ls)
	}
	if out := a.MustCLI("registry", "ls"); strings.Contains(out, host) {
		t.Errorf("the admins list acme's login:\n%s", out)
	}

	asProvider(t, a, acme, "deploy", "-q", dir)
	if code, body := a.Get("shop", "/"); code != 200 {
		t.Fatalf("shop, deployed from the private registry: %d %s", code, body)
	}
	asProvider(t, a, acme, "deploy", "-q", "--image", ref, "--name", "shop-image")
	if code, body := a.Get("shop-image", "/"); code != 200 {
		t.Fatalf("shop-image, deployed with --image: %d %s", code, body)
	}

	other := writeSolution(t, "name: copycat\ncomponents:\n  - name: web\n    image: "+ref+"\n", nil)
	_, errOut, err = a.CLIAs(beta, "deploy", "-q", other)
	if err == nil || !strings.Contains(errOut, "provider beta has none") || !strings.Contains(errOut, login) {
		t.Fatalf("beta's deploy of acme's private image: %v\n%s", err, errOut)
	}
	if cs := a.Containers("copycat"); len(cs) != 0 {
		t.Fatalf("beta's refused deploy left %d containers", len(cs))
	}
	_, errOut, err = a.CLIAs(beta, "deploy", "-q", "--image", ref, "--name", "copycat-image")
	if err == nil || !strings.Contains(errOut, login) {
		t.Fatalf("beta's deploy --image of acme's private image: %v\n%s", err, errOut)
	}

	asProvider(t, a, acme, "registry", "logout", host)
	if ls := asProvider(t, a, acme, "registry", "ls"); strings.Contains(ls, host) {
		t.Errorf("after the logout, aim registry ls:\n%s", ls)
	}
	// Logged out, acme is refused too, the image on the engine or not.
	_, errOut, err = a.CLIAs(acme, "deploy", "-q", dir)
	if err == nil || !strings.Contains(errOut, login) {
		t.Fatalf("acme's deploy after its logout: %v\n%s", err, errOut)
	}
	if code, _ := a.Get("shop", "/"); code != 200 {
		t.Errorf("the refused redeploy stopped the serving shop: %d", code)
	}
}

// TestRegistryChecker: the check `aim registry login` makes on
// Kubernetes before it keeps a login (logincheck.Checker, from the API's
// pod), against the real registry behind htpasswd: the right password
// passes, a wrong one is a refusal, and plain HTTP is used only for a
// host named insecure.
func TestRegistryChecker(t *testing.T) {
	const user, password = "acme-bot", "pw-check-31d0e5"
	host := privateRegistry(t, user, password)
	ctx := context.Background()
	insecure := &logincheck.Checker{Insecure: []string{host}}
	var err error
	// The registry may not listen yet: a few tries, one a second.
	for range 20 {
		if err = insecure.Check(ctx, registry.Login{Host: host, Username: user, Password: password}); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatalf("the right login: %v", err)
	}
	err = insecure.Check(ctx, registry.Login{Host: host, Username: user, Password: "wrong"})
	if !errors.Is(err, registry.ErrUnauthorized) {
		t.Errorf("a wrong password: %v, want a refusal", err)
	}
	t.Logf("a wrong password: %v", err)
	err = (&logincheck.Checker{}).Check(ctx, registry.Login{Host: host, Username: user, Password: password})
	if err == nil || errors.Is(err, registry.ErrUnauthorized) || !strings.Contains(err.Error(), "not sending a login in plain HTTP") {
		t.Errorf("a host not named insecure: %v, want plain HTTP refused", err)
	}
	t.Logf("not named insecure: %v", err)
}
