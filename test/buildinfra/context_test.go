package buildinfra

import (
	"archive/tar"
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/aimhub/aim/internal/kube/kbuild"
)

// The Job's init containers on the engine, as rendered: fetch takes the
// context from an HTTP server (a stand-in for the API) with the header in
// the token Secret, refusing a context over the limit; unpack puts it
// where the build reads it.
func TestContextFetchAndUnpack(t *testing.T) {
	buildImage(t, "buildkit")
	s := suffix(t)
	network := "aim-buildinfra-" + s
	run(t, "docker", "network", "create", network)
	t.Cleanup(func() { exec.Command("docker", "network", "rm", network).Run() })
	gateway := run(t, "docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network)

	var ctx bytes.Buffer
	tw := tar.NewWriter(&ctx)
	dockerfile := []byte("FROM scratch\nCOPY . /\n# " + s + "\n")
	tw.WriteHeader(&tar.Header{Name: "api/Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))})
	tw.Write(dockerfile)
	tw.Close()
	token := "tok-" + s
	ln, err := net.Listen("tcp", net.JoinHostPort(gateway, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "no such build", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(ctx.Len()))
		w.Write(ctx.Bytes())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, c := range []struct {
		name       string
		max        int64
		header     string
		wantErr    string
		wantUnpack bool
	}{
		{"fetched and unpacked", 1 << 20, "Authorization: Bearer " + token, "", true},
		{"wrong token", 1 << 20, "Authorization: Bearer nope", "401", false},
		{"over the limit", 1000, "Authorization: Bearer " + token, "Maximum file size exceeded", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := kbuild.Options{Namespace: "builds", Image: buildkitImage, ServiceAccount: "aim-build",
				Registry: "registry:5000", MaxContext: c.max}
			job, err := opts.Job(kbuild.Build{ID: "c-" + s, Solution: "s", Component: "api", Dir: "api",
				ContextURL: "http://" + ln.Addr().String() + "/ctx", TokenSecret: "t"})
			if err != nil {
				t.Fatal(err)
			}
			ws, tok := t.TempDir(), t.TempDir()
			os.Chmod(ws, 0o777)
			os.WriteFile(filepath.Join(tok, "header"), []byte(c.header+"\n"), 0o644)
			dirs := map[string]string{"workspace": ws, "token": tok}
			var failed string
			for _, ic := range job.Spec.Template.Spec.InitContainers {
				if out, err := exec.Command("docker", initArgs(t, ic.Name+"-"+s, network, ic.Image, ic.Command, ic.VolumeMounts, dirs)...).CombinedOutput(); err != nil {
					failed = ic.Name + ": " + err.Error() + ": " + string(out)
					break
				}
			}
			if c.wantErr == "" && failed != "" {
				t.Fatal(failed)
			}
			if c.wantErr != "" && !strings.Contains(failed, c.wantErr) {
				t.Fatalf("init containers: %q, want a failure containing %q", failed, c.wantErr)
			}
			got, err := os.ReadFile(filepath.Join(ws, "context", "api", "Dockerfile"))
			if c.wantUnpack && string(got) != string(dockerfile) {
				t.Fatalf("unpacked Dockerfile %q (%v), want %q", got, err, dockerfile)
			}
			if !c.wantUnpack && err == nil {
				t.Fatal("the context was unpacked after a failed fetch")
			}
			if failed != "" {
				t.Logf("refused as wanted: %s", strings.TrimSpace(failed))
			}
		})
	}
}

// initArgs is `docker run` for an init container with the settings the
// Job gives them all (kbuild's restricted()): uid 1000, read-only root,
// no capabilities, no privilege escalation.
func initArgs(t *testing.T, name, network, image string, command []string, mounts []corev1.VolumeMount, dirs map[string]string) []string {
	t.Helper()
	args := []string{"run", "--rm", "--name", "aim-buildinfra-" + name, "--network", network,
		"--user", "1000:1000", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--entrypoint", command[0]}
	for _, m := range mounts {
		dir, ok := dirs[m.Name]
		if !ok {
			t.Fatalf("the Job mounts %s at %s, which the test has no directory for", m.Name, m.MountPath)
		}
		spec := dir + ":" + m.MountPath
		if m.ReadOnly {
			spec += ":ro"
		}
		args = append(args, "-v", spec)
	}
	return append(append(args, image), command[1:]...)
}
