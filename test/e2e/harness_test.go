// Package e2e runs the aim binary against the real Docker engine: it
// starts `aim serve`, deploys tiny FROM-scratch solutions with the CLI and
// talks to them through the gateway, as a provider and a visitor would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	archive "github.com/moby/go-archive"

	"github.com/aimhub/aim/test/postgres"
)

// TestImage is the testserver image every test deploys.
const TestImage = "aim-test/server:e2e"

var (
	aimBin string
	docker *client.Client
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(serveEnv); addr != "" {
		// The test binary run again as a plain server, in a network
		// namespace of its own (see listenPublic).
		fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, http.NotFoundHandler()))
		os.Exit(1)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aim-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := setup(dir); err != nil {
		// Integration tests never skip for a missing engine: CI must run them.
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		return 1
	}
	return m.Run()
}

func setup(dir string) error {
	ctx := context.Background()
	var err error
	docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	if _, err := docker.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker engine does not answer; start dockerd (.ci/run does): %w", err)
	}
	aimBin = filepath.Join(dir, "aim")
	if out, err := exec.Command("go", "build", "-o", aimBin, "../../cmd/aim").CombinedOutput(); err != nil {
		return fmt.Errorf("building aim: %v\n%s", err, out)
	}
	return BuildTestImage(ctx, docker, filepath.Join(dir, "img"), TestImage)
}

// BuildTestImage builds test/testserver into a FROM-scratch image.
func BuildTestImage(ctx context.Context, cli *client.Client, dir, tag string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "testserver"), "../testserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building testserver: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY testserver /testserver\nENTRYPOINT [\"/testserver\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{})
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, tar, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		return fmt.Errorf("building %s: %w", tag, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("building %s: %s", tag, out)
	}
	return nil
}

// Aim is one `aim serve` process with its own data, port and Docker prefix.
type Aim struct {
	t      *testing.T
	Data   string
	Config string
	Addr   string // 127.0.0.1:port
	Prefix string
	// Database is the --database URL when the state is in PostgreSQL.
	Database string
	cmd      *exec.Cmd
	logs     *bytes.Buffer
	extra    []string
	stopped  bool
	// cgroup, when set, is the cgroup directory aim serve runs in: it
	// joins it before aim starts (see StartAimInCgroup).
	cgroup string
}

// StartAim starts aim serve; it is killed and everything it made is
// removed when the test ends.
func StartAim(t *testing.T, extra ...string) *Aim {
	t.Helper()
	return StartAimAt(t, freeAddr(t), extra...)
}

// StartAimAt is StartAim with the gateway at addr.
func StartAimAt(t *testing.T, addr string, extra ...string) *Aim {
	t.Helper()
	return startAim(t, addr, "", extra)
}

// StartAimInCgroup is StartAim with aim serve in the cgroup at dir (a
// directory of cgroupfs, v1 or v2), from its first instruction on.
func StartAimInCgroup(t *testing.T, dir string, extra ...string) *Aim {
	t.Helper()
	return startAim(t, freeAddr(t), dir, extra)
}

func startAim(t *testing.T, addr, cgroup string, extra []string) *Aim {
	t.Helper()
	dir := t.TempDir()
	a := &Aim{
		t:      t,
		Data:   filepath.Join(dir, "data"),
		Config: filepath.Join(dir, "config.json"),
		Addr:   addr,
		Prefix: fmt.Sprintf("aimt%d%s", os.Getpid()%10000, strings.NewReplacer("/", "", "_", "").Replace(strings.ToLower(t.Name()))),
		extra:  extra,
		cgroup: cgroup,
	}
	if len(a.Prefix) > 30 {
		// Subtests share their parent's long name: a hash of the whole
		// keeps their prefixes apart.
		h := fnv.New32a()
		h.Write([]byte(t.Name()))
		a.Prefix = fmt.Sprintf("%s%08x", a.Prefix[:22], h.Sum32())
	}
	a.Start()
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("aim serve log:\n%s", a.logs.String())
		}
		CleanDocker(t, a.Prefix)
	})
	return a
}

// StartAimOnPostgres is StartAim with aim's state in a PostgreSQL server
// of the test's own (aim serve --database), stopped after aim.
func StartAimOnPostgres(t *testing.T, extra ...string) *Aim {
	t.Helper()
	dsn := postgres.Start(t)
	a := StartAim(t, append([]string{"--database", dsn}, extra...)...)
	a.Database = dsn
	return a
}

// Start runs the server process and waits for /healthz.
func (a *Aim) Start() {
	a.t.Helper()
	args := append([]string{"serve", "--data", a.Data, "--http", a.Addr, "--client-config", a.Config,
		"--docker-prefix", a.Prefix, "--start-timeout", "15s"}, a.extra...)
	a.cmd = exec.Command(aimBin, args...)
	if a.cgroup != "" {
		// The shell joins the cgroup, then becomes aim: its pid is aim's.
		a.cmd = exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, a.cgroup, aimBin}, args...)...)
	}
	a.logs = &bytes.Buffer{}
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.stopped = false
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + a.Addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.t.Fatalf("aim serve did not answer /healthz:\n%s", a.logs.String())
}

// Kill ends the server with SIGKILL, as a crash would.
func (a *Aim) Kill() {
	if a.stopped || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	_ = a.cmd.Wait()
	a.stopped = true
}

// CLI runs an aim command against this server as the admin and returns
// its stdout, stderr and error.
func (a *Aim) CLI(args ...string) (string, string, error) {
	a.t.Helper()
	return a.CLIAs(a.Token(), args...)
}

// CLIAs is CLI with another API token; "" sends none.
func (a *Aim) CLIAs(token string, args ...string) (string, string, error) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aimBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+token)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// MustCLI is CLI that fails the test on error.
func (a *Aim) MustCLI(args ...string) string {
	a.t.Helper()
	out, errOut, err := a.CLI(args...)
	if err != nil {
		a.t.Fatalf("aim %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// Token is the admin token the first start wrote.
func (a *Aim) Token() string {
	a.t.Helper()
	b, err := os.ReadFile(a.Config)
	if err != nil {
		a.t.Fatalf("reading client config: %v", err)
	}
	var c struct{ Token string }
	if err := json.Unmarshal(b, &c); err != nil {
		a.t.Fatal(err)
	}
	return c.Token
}

// Get sends a request for a solution through the gateway.
func (a *Aim) Get(solution, path string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+path, nil)
	req.Host = solution + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("GET %s%s: %v", solution, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Containers lists the containers of a solution made by this server.
func (a *Aim) Containers(solution string) []container.Summary {
	a.t.Helper()
	f := filters.NewArgs(filters.Arg("label", "dev.aim.managed="+a.Prefix))
	if solution != "" {
		f.Add("label", "dev.aim.solution="+solution)
	}
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		a.t.Fatal(err)
	}
	return cs
}

// Networks lists the networks made by this server.
func (a *Aim) Networks() []network.Summary {
	a.t.Helper()
	ns, err := docker.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "dev.aim.managed="+a.Prefix))})
	if err != nil {
		a.t.Fatal(err)
	}
	return ns
}

// CleanDocker removes what a test's server made.
func CleanDocker(t *testing.T, prefix string) {
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", "dev.aim.managed="+prefix))
	cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, c := range cs {
		_ = docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		_ = docker.NetworkRemove(ctx, n.ID)
	}
	// Volumes outlive their solutions on purpose; not a test's.
	vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	for _, v := range vs.Volumes {
		_ = docker.VolumeRemove(ctx, v.Name, true)
	}
	_, _ = docker.ImageRemove(ctx, prefix+"-volume-helper:1", image.RemoveOptions{})
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeSolution writes an aim.yaml (and optional files) into a temp dir.
func writeSolution(t *testing.T, manifest string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
