package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/errdefs"
)

// The tests of issue 16's persistent state: volumes kept across sleeps,
// wakes, restarts and `aim rm`, moved as tar streams.

// cliIn is Aim.CLI with stdin.
func cliIn(t *testing.T, a *Aim, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aimBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+a.Token())
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// tarFiles reads a tar stream into its regular files' names, contents and
// owners ("name" -> "content uid").
func tarFiles(t *testing.T, data string) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(strings.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading the export: %v", err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = string(b) + " " + itoa(h.Uid)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func tarOf(t *testing.T, files map[string]string, extra ...*tar.Header) io.Reader {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	for _, h := range extra {
		_ = tw.WriteHeader(h)
	}
	_ = tw.Close()
	return &b
}

// TestVolumeKeptExportedImportedDeleted: a volume is writable by the
// uid 65534 the component runs as, is kept through a sleep and `aim rm`,
// is reused by the next deploy of the name, moves through export and
// import, and goes with `aim rm --delete-data`.
func TestVolumeKeptExportedImportedDeleted(t *testing.T) {
	a := StartAim(t)
	dir := writeSolution(t, `name: vols
components:
  - name: web
    image: `+TestImage+`
    volumes: [{name: data, path: /data, size: 10Mi}]
`, nil)
	if out, errOut, err := a.CLI("check", dir); err != nil {
		t.Errorf("aim check: %v\n%s%s", err, out, errOut)
	}
	a.MustCLI("deploy", "-q", dir)
	if code, body := a.Get("vols", "/write?path=/data/a"); code != 200 {
		t.Fatalf("writing the volume as uid 65534: %d %s", code, body)
	}
	if st := a.MustCLI("status", "vols"); !strings.Contains(st, "Storage:     volume data:") || !strings.Contains(st, "of 10Mi ("+a.Prefix+"-vols_data)") {
		t.Errorf("status does not show the volume:\n%s", st)
	}
	export := func() map[string]string {
		t.Helper()
		return tarFiles(t, a.MustCLI("volume", "export", "vols", "data"))
	}
	if got := export(); got["a"] != "x 65534" {
		t.Fatalf("export: %v, want a = x, owned by 65534", got)
	}

	// An import replaces files under a running program: refused awake.
	if _, errOut, err := cliIn(t, a, tarOf(t, map[string]string{"b": "imported"}), "volume", "import", "vols", "data"); err == nil || !strings.Contains(errOut, "put it to sleep first") {
		t.Errorf("import while awake: %v %s", err, errOut)
	}
	a.MustCLI("sleep", "vols")
	if _, errOut, err := cliIn(t, a, tarOf(t, map[string]string{"b": "imported", "sub/c": "deep"}), "volume", "import", "vols", "data"); err != nil {
		t.Fatalf("import: %v %s", err, errOut)
	}
	dev := &tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}
	if _, errOut, err := cliIn(t, a, tarOf(t, nil, dev), "volume", "import", "vols", "data"); err == nil || !strings.Contains(errOut, `"null" is not a file, a directory or a link`) {
		t.Errorf("importing a device: %v %s", err, errOut)
	}
	// The wake finds the data of before the sleep and the import.
	if code, body := a.Get("vols", "/write?path=/data/sub/d"); code != 200 {
		t.Fatalf("writing after the wake: %d %s", code, body)
	}
	got := export()
	for name, want := range map[string]string{"a": "x 65534", "b": "imported 65534", "sub/c": "deep 65534", "sub/d": "x 65534"} {
		if got[name] != want {
			t.Errorf("after sleep, import and wake: %s = %q, want %q (all: %v)", name, got[name], want, got)
		}
	}

	ref := a.Prefix + "-vols_data"
	out := a.MustCLI("rm", "vols")
	if !strings.Contains(out, "kept volume data ("+ref) {
		t.Errorf("aim rm says:\n%s", out)
	}
	if _, err := docker.VolumeInspect(context.Background(), ref); err != nil {
		t.Fatalf("aim rm deleted the volume: %v", err)
	}
	// Exported after the removal, by its owner (here the admin).
	if got := export(); got["b"] != "imported 65534" {
		t.Errorf("export after rm: %v", got)
	}
	a.MustCLI("deploy", "-q", dir)
	if got := export(); got["a"] != "x 65534" {
		t.Errorf("the next deploy of vols has a fresh volume: %v", got)
	}
	out = a.MustCLI("rm", "--delete-data", "vols")
	if !strings.Contains(out, "deleted volume data ("+ref+")") {
		t.Errorf("aim rm --delete-data says:\n%s", out)
	}
	if _, err := docker.VolumeInspect(context.Background(), ref); !errdefs.IsNotFound(err) {
		t.Errorf("the volume is still there after --delete-data: %v", err)
	}
}

// post sends a request with a body for a solution through the gateway.
func post(t *testing.T, a *Aim, solution, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Addr+path, strings.NewReader(body))
	req.Host = solution + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s%s: %v", solution, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// flaskApp keeps uploads in /data, as a Flask app would anywhere.
const flaskApp = `import os
import signal
import sys

from flask import Flask, request

# As PID 1 the process gets no default action for SIGTERM (docs/packaging.md).
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
app = Flask(__name__)
DATA = "/data"


@app.get("/")
def index():
    return "uploads: " + ",".join(sorted(os.listdir(DATA))) + "\n"


@app.post("/upload/<name>")
def upload(name):
    with open(os.path.join(DATA, os.path.basename(name)), "wb") as f:
        f.write(request.get_data())
    return "stored " + name + "\n"


@app.get("/uploads/<name>")
def uploaded(name):
    with open(os.path.join(DATA, os.path.basename(name)), "rb") as f:
        return f.read()


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8080)
`

// TestFlaskUploadsSurvive is issue 16's Flask app (acceptance 1): Debian's
// Flask, uploads written to a volume with one manifest line, which
// survive a sleep, a wake and a restart of aim serve.
func TestFlaskUploadsSurvive(t *testing.T) {
	requireImage(t, "aim-base/flask:bookworm", "flask")
	a := StartAim(t, "--start-timeout", "60s")
	dir := writeSolution(t, `name: uploader
components:
  - name: web
    build: .
    volumes: [{name: uploads, path: /data, size: 100Mi}]
`, map[string]string{
		"app.py":     flaskApp,
		"Dockerfile": "FROM aim-base/flask:bookworm\nCOPY app.py /app/app.py\nCMD [\"python3\", \"/app/app.py\"]\n",
	})
	// aim check runs it with an empty tmpfs at /data: a read-only root
	// file system is not what it meets, nor the mount point a write.
	if out, errOut, err := a.CLI("check", dir); err != nil {
		t.Errorf("aim check: %v\n%s%s", err, out, errOut)
	}
	start := time.Now()
	a.MustCLI("deploy", "-q", dir)
	t.Logf("deployed in %s", time.Since(start).Round(time.Millisecond))
	if code, body := post(t, a, "uploader", "/upload/report.txt", "quarterly numbers"); code != 200 {
		t.Fatalf("upload: %d %s", code, body)
	}
	check := func(when string) {
		t.Helper()
		if code, body := a.Get("uploader", "/uploads/report.txt"); code != 200 || body != "quarterly numbers" {
			t.Fatalf("%s: the upload reads %d %q", when, code, body)
		}
	}
	check("at once")
	a.MustCLI("sleep", "uploader")
	waitState(t, a, "uploader", "sleeping", 30*time.Second)
	check("after a sleep and the wake this request made")
	t.Logf("slept and woke by %s", time.Since(start).Round(time.Millisecond))
	a.Kill()
	a.Start()
	check("after aim serve restarted")
	t.Logf("restarted by %s", time.Since(start).Round(time.Millisecond))
	if code, body := post(t, a, "uploader", "/upload/second.txt", "more"); code != 200 {
		t.Fatalf("upload after the restart: %d %s", code, body)
	}
	if code, body := a.Get("uploader", "/"); code != 200 || body != "uploads: report.txt,second.txt\n" {
		t.Errorf("index: %d %q", code, body)
	}
}

// TestPrometheusTSDBOnVolume is issue 16's Prometheus (acceptance 1):
// Debian's package with Debian's configuration, its TSDB on a volume by
// one manifest line (and the ready path docs/packaging.md gives it);
// after a sleep its query API answers, with the samples it scraped before
// the sleep.
func TestPrometheusTSDBOnVolume(t *testing.T) {
	requireImage(t, "aim-base/prometheus:bookworm", "prometheus")
	a := StartAim(t, "--start-timeout", "60s")
	dir := writeSolution(t, `name: prom
components:
  - name: prometheus
    image: aim-base/prometheus:bookworm
    ready: {path: /-/ready}
    volumes: [{name: tsdb, path: /var/lib/prometheus/metrics2, size: 1Gi}]
`, nil)
	if out, errOut, err := a.CLI("check", dir); err != nil {
		t.Errorf("aim check: %v\n%s%s", err, out, errOut)
	}
	a.MustCLI("deploy", "-q", dir)
	// Debian's configuration scrapes localhost:9090, where nothing
	// listens (aim's port is 8080): each scrape still records up = 0.
	var before string
	deadline := time.Now().Add(2 * time.Minute)
	for before == "" && time.Now().Before(deadline) {
		code, body := a.Get("prom", "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D")
		if code == 200 && strings.Contains(body, `"value":[`) {
			// "value":[<unix time>,"0"]
			before = strings.SplitN(strings.SplitN(body, `"value":[`, 2)[1], ",", 2)[0]
			break
		}
		time.Sleep(time.Second)
	}
	if before == "" {
		t.Fatal("Prometheus recorded no scrape within two minutes")
	}
	a.MustCLI("sleep", "prom")
	waitState(t, a, "prom", "sleeping", 30*time.Second)
	// The query of the sample's own time wakes it; without the volume the
	// new process would have no such sample.
	query := "/api/v1/query?query=up%7Bjob%3D%22prometheus%22%7D&time=" + before
	code, body := a.Get("prom", query)
	if code != 200 || !strings.Contains(body, `"value":[`+before+`,`) {
		t.Errorf("after the wake, the query at %s answers %d %s", before, code, body)
	}
	// An update: the new Prometheus takes the TSDB's lock only once the
	// old one has let it go.
	a.MustCLI("deploy", "-q", dir)
	if code, body := a.Get("prom", query); code != 200 || !strings.Contains(body, `"value":[`+before+`,`) {
		t.Errorf("after an update, the query at %s answers %d %s", before, code, body)
	}
}

// TestKeptVolumeIsItsOwners: acme removes a solution and keeps its
// volume; beta's deploy of the free name is refused rather than given
// acme's data, and beta cannot export it; acme's next deploy finds it.
func TestKeptVolumeIsItsOwners(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("provider", "add", "acme")
	a.MustCLI("provider", "add", "beta")
	token := func(provider string) string {
		out, errOut, err := a.CLI("token", "create", "--provider", provider, "--name", "e2e", "--expires", "1d")
		if err != nil {
			t.Fatalf("token create: %v\n%s%s", err, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	acme, beta := token("acme"), token("beta")
	dir := writeSolution(t, "name: notes\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    volumes: [{name: data, path: /data, size: 10Mi}]\n", nil)
	if out, errOut, err := a.CLIAs(acme, "deploy", "-q", dir); err != nil {
		t.Fatalf("acme's deploy: %v\n%s%s", err, out, errOut)
	}
	if code, body := a.Get("notes", "/write?path=/data/secret"); code != 200 {
		t.Fatalf("write: %d %s", code, body)
	}
	if out, errOut, err := a.CLIAs(acme, "rm", "notes"); err != nil || !strings.Contains(out, "kept volume data") {
		t.Fatalf("acme's rm: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := a.CLIAs(beta, "volume", "export", "notes", "data"); err == nil || !strings.Contains(errOut, "not found") {
		t.Errorf("beta exports acme's kept volume: %v\n%q %s", err, out, errOut)
	}
	out, errOut, err := a.CLIAs(beta, "deploy", "-q", dir)
	if err == nil || !strings.Contains(out+errOut, "was kept from an earlier solution notes that belonged to someone else") {
		t.Errorf("beta's deploy of the name: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := a.CLIAs(beta, "rm", "--delete-data", "notes"); err != nil || strings.Contains(out, "deleted volume data") {
		t.Errorf("beta's rm --delete-data: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := a.CLIAs(acme, "deploy", "-q", dir); err != nil {
		t.Fatalf("acme's second deploy: %v\n%s%s", err, out, errOut)
	}
	if got := tarFiles(t, mustOut(t, a, acme, "volume", "export", "notes", "data")); got["secret"] != "x 65534" {
		t.Errorf("acme's volume after beta's attempt: %v", got)
	}
}

func mustOut(t *testing.T, a *Aim, token string, args ...string) string {
	t.Helper()
	out, errOut, err := a.CLIAs(token, args...)
	if err != nil {
		t.Fatalf("aim %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// requireImage builds a base image with images/build.sh, which skips one
// that exists (and keeps the root filesystem it made in ~/.cache/aim).
func requireImage(t *testing.T, ref, target string) {
	t.Helper()
	if out, err := exec.Command("../../images/build.sh", target).CombinedOutput(); err != nil {
		t.Fatalf("building %s (images/build.sh %s: Debian's packages on a debootstrap root; needs root): %v\n%s", ref, target, err, out)
	}
}
