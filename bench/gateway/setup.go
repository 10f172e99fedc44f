package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	archive "github.com/moby/go-archive"

	"github.com/aimhub/aim/internal/runtime/docker"
)

// sameAnswer checks that both proxies answer GET / with 200 and the same
// body: they front the same backend.
func sameAnswer(ctx context.Context, host string, urls ...string) error {
	var first []byte
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s (Host %s): %d %s", u, host, resp.StatusCode, b)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			return fmt.Errorf("GET %s answered differently from %s: the proxies do not front the same backend", u, urls[0])
		}
	}
	return nil
}

// backendAddr is the address of the benchmark solution's one container,
// on its bridge network, as aim's gateway dials it.
func backendAddr(ctx context.Context, cli *client.Client) (string, error) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelManaged+"="+prefix), filters.Arg("label", docker.LabelSolution+"="+solution))})
	if err != nil {
		return "", err
	}
	if len(cs) != 1 {
		return "", fmt.Errorf("want one running container of %s, found %d", solution, len(cs))
	}
	info, err := cli.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		return "", err
	}
	for _, n := range info.NetworkSettings.Networks {
		if n.IPAddress != "" {
			return net.JoinHostPort(n.IPAddress, "8080"), nil
		}
	}
	return "", fmt.Errorf("container %s has no address", cs[0].ID[:12])
}

// removeLeftovers removes every container and network made with this
// benchmark's Docker prefix.
func removeLeftovers(ctx context.Context, cli *client.Client) {
	f := filters.NewArgs(filters.Arg("label", docker.LabelManaged+"="+prefix))
	cs, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			fmt.Fprintln(os.Stderr, "bench/gateway: removing container:", err)
		}
	}
	ns, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	for _, n := range ns {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil {
			fmt.Fprintln(os.Stderr, "bench/gateway: removing network:", err)
		}
	}
}

func buildBackend(ctx context.Context, cli *client.Client, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "backend"), "./bench/gateway/backend")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the backend (run from the repository root): %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY backend /backend\nUSER 65534:65534\nENTRYPOINT [\"/backend\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{IncludeFiles: []string{"Dockerfile", "backend"}})
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, tar, build.ImageBuildOptions{Tags: []string{image}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		return fmt.Errorf("building %s: %w", image, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("building %s: %s", image, out)
	}
	return nil
}

// ensureTools installs what is missing with apt-get (Debian's nginx-light,
// haproxy, wrk and nghttp2-client's h2load), and fails naming what still
// is.
func ensureTools(ctx context.Context) error {
	pkgs := map[string]string{"nginx": "nginx-light", "haproxy": "haproxy", "wrk": "wrk", "h2load": "nghttp2-client",
		"taskset": "util-linux", "unshare": "util-linux"}
	bins := []string{"nginx", "haproxy", "wrk", "h2load", "taskset", "unshare"}
	var missing []string
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkgs[bin])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	step("installing " + strings.Join(missing, ", ") + " with apt-get")
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("installing %s: %v\n%s", strings.Join(missing, " "), err, out)
	}
	for _, bin := range bins {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is still missing after apt-get install %s", bin, pkgs[bin])
		}
	}
	return nil
}

func versions(ctx context.Context, cli *client.Client) []string {
	var v []string
	v = append(v, runtime.Version())
	v = append(v, nginxVersion(), haproxyVersion())
	if out, err := exec.Command("h2load", "--version").Output(); err == nil {
		v = append(v, strings.TrimSpace(string(out)))
	}
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	first, _, _ := strings.Cut(string(out), " Copyright")
	v = append(v, strings.TrimSpace(first))
	if sv, err := cli.ServerVersion(ctx); err == nil {
		v = append(v, "Docker engine "+sv.Version)
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := "aim at " + strings.TrimSpace(string(out))
		if st, _ := exec.Command("git", "status", "--porcelain", "--", "internal", "cmd").Output(); len(st) > 0 {
			rev += " with uncommitted changes"
		}
		v = append(v, rev)
	}
	return v
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	osName := runtime.GOOS
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				osName = strings.Trim(v, `"`)
			}
		}
	}
	return fmt.Sprintf("%s, %d cores (%s)", osName, runtime.NumCPU(), model)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func step(s string) { fmt.Fprintf(os.Stderr, "bench/gateway: %s\n", s) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/gateway: %s=%q is not a number\n", k, v)
		os.Exit(2)
	}
	return n
}

func envDuration(k string, def time.Duration) time.Duration {
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/gateway: %s=%q is not a duration (e.g. 10s)\n", k, v)
		os.Exit(2)
	}
	return d
}

func median[T int64 | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// copyDir copies a directory tree of regular files (aim's data, while no
// aim runs on it).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
}
