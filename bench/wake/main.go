// Command wake measures what waking costs: the time from a request to a
// sleeping solution until its first byte, against the floor for the same
// image on the same engine, in the same run: `docker start` of a stopped
// container plus polling it by hand until it answers.
//
// It needs the aim binary (-aim), a Docker engine, and builds the tiny
// test server image itself. Results are medians over -rounds.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	archive "github.com/moby/go-archive"
)

const image = "aim-bench/server:wake"

func main() {
	aimBin := flag.String("aim", "bin/aim", "the aim binary")
	rounds := flag.Int("rounds", 15, "wakes to measure on each side")
	flag.Parse()
	if err := run(*aimBin, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/wake:", err)
		os.Exit(1)
	}
}

func run(aimBin string, rounds int) error {
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "aim-bench-wake-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := buildImage(ctx, cli, dir); err != nil {
		return err
	}
	floorRound, closeFloor, err := setupFloor(ctx, cli)
	if err != nil {
		return fmt.Errorf("preparing the floor: %w", err)
	}
	defer closeFloor()
	aimRound, closeAim, err := setupAim(ctx, aimBin, dir)
	if err != nil {
		return fmt.Errorf("preparing aim: %w", err)
	}
	defer closeAim()
	// The two sides alternate, so that whatever else the machine does
	// weighs on both alike.
	var floor, wake []time.Duration
	for i := 0; i < rounds; i++ {
		f, err := floorRound()
		if err != nil {
			return fmt.Errorf("floor round %d: %w", i, err)
		}
		w, err := aimRound()
		if err != nil {
			return fmt.Errorf("aim round %d: %w", i, err)
		}
		floor, wake = append(floor, f), append(wake, w)
	}
	f, w := median(floor), median(wake)
	fmt.Printf("| what | median | p90 | rounds |\n|---|---|---|---|\n")
	fmt.Printf("| docker start + first answer, by hand (floor) | %s | %s | %d |\n", ms(f), ms(pct(floor, 0.9)), rounds)
	fmt.Printf("| request to a sleeping solution → first byte, through aim | %s | %s | %d |\n", ms(w), ms(pct(wake, 0.9)), rounds)
	fmt.Printf("\nratio aim/floor: %.2f; aim's overhead: %s\n", float64(w)/float64(f), ms(w-f))
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func median(ds []time.Duration) time.Duration { return pct(ds, 0.5) }

func pct(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p+0.5)]
}

func buildImage(ctx context.Context, cli *client.Client, dir string) error {
	bin := filepath.Join(dir, "testserver")
	cmd := exec.Command("go", "build", "-o", bin, "./test/testserver")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the test server (run from the repository root): %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY testserver /testserver\nENTRYPOINT [\"/testserver\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{IncludeFiles: []string{"Dockerfile", "testserver"}})
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, tar, build.ImageBuildOptions{Tags: []string{image}, Remove: true, Version: build.BuilderV1})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("building %s: %s", image, out)
	}
	return nil
}

// measureFloor starts a stopped container of the same image, with the
// same confinement aim uses, and polls it every millisecond until GET /
// answers.
func setupFloor(ctx context.Context, cli *client.Client) (func() (time.Duration, error), func(), error) {
	netName := "aim-bench-floor"
	_ = cli.ContainerRemove(ctx, "aim-bench-floor", container.RemoveOptions{Force: true})
	_ = cli.NetworkRemove(ctx, netName)
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge"}); err != nil {
		return nil, nil, err
	}
	pids := int64(256)
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, User: "65534:65534"}, &container.HostConfig{
		ReadonlyRootfs: true, Tmpfs: map[string]string{"/tmp": "rw,size=64m"}, CapDrop: []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"}, NetworkMode: container.NetworkMode(netName),
		Resources: container.Resources{Memory: 512 << 20, NanoCPUs: 1e9, PidsLimit: &pids},
	}, nil, nil, "aim-bench-floor")
	if err != nil {
		cli.NetworkRemove(ctx, netName)
		return nil, nil, err
	}
	cleanup := func() {
		cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, container.RemoveOptions{Force: true})
		cli.NetworkRemove(context.WithoutCancel(ctx), netName)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	round := func() (time.Duration, error) {
		start := time.Now()
		if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return 0, err
		}
		info, err := cli.ContainerInspect(ctx, c.ID)
		if err != nil {
			return 0, err
		}
		addr := net.JoinHostPort(info.NetworkSettings.Networks[netName].IPAddress, "8080")
		for {
			resp, err := hc.Get("http://" + addr + "/")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Since(start) > 30*time.Second {
				return 0, fmt.Errorf("the container did not answer: %w", err)
			}
			time.Sleep(time.Millisecond)
		}
		d := time.Since(start)
		return d, cli.ContainerStop(ctx, c.ID, container.StopOptions{})
	}
	return round, cleanup, nil
}

// measureAim runs aim serve, deploys the image, and for each round puts it
// to sleep through the API and times one request until its first byte.
func setupAim(ctx context.Context, aimBin, dir string) (round func() (time.Duration, error), cleanup func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "client.json")
	serve := exec.Command(aimBin, "serve", "--data", filepath.Join(dir, "data"), "--http", addr,
		"--client-config", cfg, "--docker-prefix", "aimbench")
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		return nil, nil, err
	}
	cleanup = func() {
		serve.Process.Kill()
		serve.Wait()
		exec.Command(aimBin, "rm", "bench").Run()
		// Leave nothing behind, even if rm failed.
		out, _ := exec.Command("docker", "ps", "-aq", "--filter", "label=dev.aim.managed=aimbench").Output()
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			exec.Command("docker", append([]string{"rm", "-f"}, ids...)...).Run()
		}
		exec.Command("docker", "network", "rm", "aimbench-bench").Run()
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	base := "http://" + addr
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 200 {
			return nil, nil, fmt.Errorf("aim serve did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		return nil, nil, err
	}
	var c struct{ Token string }
	if err = json.Unmarshal(b, &c); err != nil {
		return nil, nil, err
	}
	os.Setenv("AIM_SERVER", base)
	os.Setenv("AIM_TOKEN", c.Token)
	if out, derr := exec.Command(aimBin, "deploy", "-q", "--name", "bench", "--image", image).CombinedOutput(); derr != nil {
		err = fmt.Errorf("deploy: %v\n%s", derr, out)
		return nil, nil, err
	}
	hc := &http.Client{Timeout: time.Minute}
	round = func() (time.Duration, error) {
		if o, err := exec.Command(aimBin, "sleep", "bench").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("sleep: %v\n%s", err, o)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = "bench.localhost"
		var first time.Time
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}))
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("the waking request got %d", resp.StatusCode)
		}
		return first.Sub(start), nil
	}
	return round, cleanup, nil
}
