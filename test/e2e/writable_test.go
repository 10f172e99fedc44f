package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The tests of issue 16: existing apps brought with one manifest line
// (writable paths), and GPUs asked for where there are none.

// nginxImage is nginx-light from Debian's packages, as `images/build.sh
// nginx` makes it: Debian's configuration, changed only to listen on 8080.
const nginxImage = "aim-base/nginx:bookworm"

// nginxWritable is the line aim check proposes for it, and all its
// manifest needs.
const nginxWritable = "writable: [/run, /var/lib/nginx, /var/log/nginx]"

// baseImage makes one of images/build.sh's images (skipped when it
// exists; the root filesystem is cached in ~/.cache/aim).
func baseImage(t *testing.T, target string) {
	t.Helper()
	start := time.Now()
	if out, err := exec.Command("../../images/build.sh", target).CombinedOutput(); err != nil {
		t.Fatalf("images/build.sh %s (Debian's packages on a debootstrap root; needs root): %v\n%s", target, err, out)
	}
	t.Logf("images/build.sh %s: %s", target, time.Since(start).Round(time.Millisecond))
}

// solutionDir writes an aim.yaml into a new directory.
func solutionDir(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestCheckProposesWritable: aim check on the unmodified nginx names
// what it writes outside /tmp and the writable: line that makes it
// start, and passes it with that line; on the unmodified Jupyter, which
// writes only under the HOME aim gives it (/tmp), it names those files
// and needs no line.
func TestCheckProposesWritable(t *testing.T) {
	baseImage(t, "nginx")
	baseImage(t, "jupyter")
	t.Run("nginx as it is", func(t *testing.T) {
		out, err := exec.Command(aimBin, "check", "--start-timeout", "30s", "--stop-timeout", "5s", "--image", nginxImage).CombinedOutput()
		t.Logf("aim check:\n%s", out)
		if err == nil {
			t.Errorf("aim check passed nginx, which stops on the read-only filesystem")
		}
		for _, w := range []string{
			"FAIL  read-only-fs  wrote /run/nginx.pid, /var/lib/nginx/body",
			`mkdir() "/var/lib/nginx/body" failed (30: Read-only file system)`,
			"fix: add to the component in aim.yaml: " + nginxWritable,
			"the tmpfs at /var/log/nginx hides what the image has there (/var/log/nginx/access.log, /var/log/nginx/error.log)",
		} {
			if !strings.Contains(string(out), w) {
				t.Errorf("aim check lacks %q", w)
			}
		}
	})
	t.Run("nginx with the line", func(t *testing.T) {
		dir := solutionDir(t, "name: nginx\ncomponents:\n  - name: web\n    image: "+nginxImage+"\n    "+nginxWritable+"\n")
		out, err := exec.Command(aimBin, "check", "--start-timeout", "30s", "--stop-timeout", "5s", dir).CombinedOutput()
		t.Logf("aim check:\n%s", out)
		if err != nil {
			t.Errorf("aim check failed nginx with its writable paths: %v", err)
		}
		for _, w := range []string{"PASS  starts", "PASS  read-only-fs  wrote nothing outside /tmp and its writable paths", "PASS  root-html"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("aim check lacks %q", w)
			}
		}
	})
	t.Run("jupyter as it is", func(t *testing.T) {
		out, err := exec.Command(aimBin, "check", "--start-timeout", "60s", "--stop-timeout", "10s", "--image", jupyterImage).CombinedOutput()
		t.Logf("aim check:\n%s", out)
		if err != nil {
			t.Errorf("aim check failed Jupyter: %v", err)
		}
		for _, w := range []string{"PASS  read-only-fs  wrote nothing outside /tmp", "WARN  writes-lost   wrote /tmp/.local/share/jupyter/runtime/"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("aim check lacks %q", w)
			}
		}
	})
}

// TestNginxWithWritablePaths: nginx as Debian packages it, deployed with
// the one line aim check proposes, answers through the gateway; it runs
// as uid 65534 on a read-only root, its writable paths are tmpfs owned by
// that user, and it can write nowhere else.
func TestNginxWithWritablePaths(t *testing.T) {
	baseImage(t, "nginx")
	a := StartAim(t)
	dir := solutionDir(t, "name: nginx\ncomponents:\n  - name: web\n    image: "+nginxImage+"\n    "+nginxWritable+"\n")
	if out, errOut, err := a.CLI("deploy", dir); err != nil {
		t.Fatalf("deploy: %v\n%s%s", err, out, errOut)
	}
	code, body := a.Get("nginx", "/")
	if code != 200 || !strings.Contains(body, "Welcome to nginx!") {
		t.Errorf("GET / through the gateway: %d\n%.300s", code, body)
	}
	cs := a.Containers("nginx")
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	info, err := docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !info.HostConfig.ReadonlyRootfs || info.Config.User != "65534:65534" {
		t.Errorf("read-only root %v, user %q; want a read-only root and 65534:65534", info.HostConfig.ReadonlyRootfs, info.Config.User)
	}
	for _, c := range []struct{ cmd, want string }{
		{"stat -c %u:%g:%a /run /var/lib/nginx /var/log/nginx", "65534:65534:755\n65534:65534:755\n65534:65534:755\n"},
		{"grep ' /var/lib/nginx ' /proc/mounts | cut -d' ' -f3", "tmpfs\n"},
		{"ls /var/lib/nginx", "body\nfastcgi\nproxy\nscgi\nuwsgi\n"},
		{"touch /var/www/html/x 2>&1; true", "touch: cannot touch '/var/www/html/x': Read-only file system\n"},
	} {
		if got := execIn(t, cs[0].ID, c.cmd); got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.cmd, got, c.want)
		}
	}
}

// execIn runs a shell command in a container as its user and returns
// its output.
func execIn(t *testing.T, id, cmd string) string {
	t.Helper()
	out, err := exec.Command("docker", "exec", id, "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec %s: %v\n%s", cmd, err, out)
	}
	return string(out)
}

// TestJupyterKernelOverWebSocket: Jupyter Notebook as Debian packages
// it, deployed with one line (its token), runs 1+1 in a kernel over the
// kernel's WebSocket, through the gateway.
func TestJupyterKernelOverWebSocket(t *testing.T) {
	baseImage(t, "jupyter")
	a := StartAim(t, "--start-timeout", "60s")
	const token = "e2e-notebook-token"
	dir := solutionDir(t, "name: notebook\ncomponents:\n  - name: web\n    image: "+jupyterImage+"\n    env: {JUPYTER_TOKEN: "+token+"}\n")
	if out, errOut, err := a.CLI("deploy", dir); err != nil {
		t.Fatalf("deploy: %v\n%s%s", err, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+a.Addr+"/api/kernels", strings.NewReader(`{"name": "python3"}`))
	req.Host = "notebook.localhost"
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var kernel struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &kernel) != nil || kernel.ID == "" {
		t.Fatalf("POST /api/kernels: %d %s", resp.StatusCode, b)
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+a.Addr+"/api/kernels/"+kernel.ID+"/channels?token="+token, &websocket.DialOptions{Host: "notebook.localhost"})
	if err != nil {
		t.Fatalf("the kernel's WebSocket through the gateway: %v", err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	msgID := randomHex(t)
	execute := map[string]any{
		"header": map[string]any{"msg_id": msgID, "username": "e2e", "session": randomHex(t), "msg_type": "execute_request", "version": "5.3",
			"date": time.Now().UTC().Format(time.RFC3339)},
		"parent_header": map[string]any{}, "metadata": map[string]any{}, "channel": "shell", "buffers": []any{},
		"content": map[string]any{"code": "1+1", "silent": false, "store_history": false, "user_expressions": map[string]any{}, "allow_stdin": false, "stop_on_error": true},
	}
	b, _ = json.Marshal(execute)
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("reading the kernel's messages before an execute_result: %v", err)
		}
		var m struct {
			Channel string
			Header  struct {
				MsgType string `json:"msg_type"`
			}
			ParentHeader struct {
				MsgID string `json:"msg_id"`
			} `json:"parent_header"`
			Content json.RawMessage
		}
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("a message that is not JSON: %.200s", data)
		}
		if m.ParentHeader.MsgID != msgID {
			continue
		}
		t.Logf("%s %s %s", m.Channel, m.Header.MsgType, m.Content)
		switch m.Header.MsgType {
		case "error":
			t.Fatalf("the kernel failed 1+1: %s", m.Content)
		case "execute_result":
			var c struct {
				Data map[string]string
			}
			_ = json.Unmarshal(m.Content, &c)
			if m.Channel != "iopub" || c.Data["text/plain"] != "2" {
				t.Errorf("execute_result on %s: %s, want 2 on iopub", m.Channel, m.Content)
			}
			return
		}
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestGPUDeployFailsWithoutGPU: on this engine, which has no NVIDIA
// runtime, a deploy that asks for a GPU fails with what is missing, and
// no container was made.
func TestGPUDeployFailsWithoutGPU(t *testing.T) {
	out, err := exec.Command("docker", "info", "--format", "{{json .Runtimes}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), `"nvidia"`) {
		t.Fatalf("this engine has the nvidia runtime (%s): the test needs a host without GPUs", out)
	}
	a := StartAim(t)
	dir := solutionDir(t, "name: gpu\ncomponents:\n  - name: model\n    image: "+TestImage+"\n    resources: {gpu: 1}\n")
	stdout, errOut, err := a.CLI("deploy", dir)
	if err == nil {
		t.Fatalf("a GPU deploy passed on a host without GPUs:\n%s%s", stdout, errOut)
	}
	t.Logf("aim deploy:\n%s", errOut)
	want := "solution gpu needs GPUs (model asks for 1 (resources.gpu)), but this Docker engine has no NVIDIA GPU runtime"
	if !strings.Contains(errOut, want) || !strings.Contains(errOut, "nvidia-ctk runtime configure") {
		t.Errorf("aim deploy says:\n%s\nwant it to contain %q and how to install the runtime", errOut, want)
	}
	if cs := a.Containers("gpu"); len(cs) > 0 {
		t.Errorf("%d containers were made", len(cs))
	}
}
