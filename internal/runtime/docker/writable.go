package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/aimhub/aim/internal/spec"
)

// writableTmpfs is the tmpfs options of each of a component's writable
// paths: size-limited (the pages count in the container's memory
// cgroup, like /tmp's), and owned by the user the container runs as, so
// that uid 65534 can write where the image's root-owned directory was.
// A named USER (or group) other than root and nobody is not in the
// image's configuration as a number, and the kernel takes only numbers:
// its directories are world-writable with the sticky bit, as /tmp is
// (and as Kubernetes makes an emptyDir).
func writableTmpfs(ws []spec.Writable, user string) map[string]string {
	owner := "mode=1777"
	if uid, gid, ok := numericUser(knownUser(user)); ok {
		owner = fmt.Sprintf("uid=%d,gid=%d,mode=0755", uid, gid)
	}
	out := make(map[string]string, len(ws))
	for _, w := range ws {
		out[w.Path] = fmt.Sprintf("rw,nosuid,nodev,size=%d,%s", int64(w.Size), owner)
	}
	return out
}

// knownUser spells a container's USER as uid:gid where the engine's
// reading of it is known without the image's /etc/passwd: "" and root
// are 0, nobody is 65534 (Debian's and Alpine's), a uid alone takes gid 0
// unless it is 65534. Other names stay, and numericUser refuses them.
func knownUser(user string) string {
	u, g, hasGroup := strings.Cut(user, ":")
	switch u {
	case "", "root":
		u = "0"
	case "nobody":
		u = "65534"
	}
	switch {
	case !hasGroup && u == "65534":
		g = "65534"
	case !hasGroup, g == "root":
		g = "0"
	case g == "nogroup" || g == "nobody":
		g = "65534"
	}
	return u + ":" + g
}

// WritableDirs are /tmp and a component's writable paths: where what it
// writes goes, and is lost when it stops.
func WritableDirs(c spec.Component) []string {
	dirs := []string{"/tmp"}
	for _, w := range c.Writable {
		dirs = append(dirs, w.Path)
	}
	return dirs
}

// gpuRequests asks the engine for n NVIDIA GPUs, as docker run --gpus n.
func gpuRequests(n int64) []container.DeviceRequest {
	if n <= 0 {
		return nil
	}
	return []container.DeviceRequest{{Driver: "nvidia", Count: int(n), Capabilities: [][]string{{"gpu"}}}}
}

// checkGPUs fails a deploy that asks for GPUs on an engine that cannot
// give any, before any container is made: otherwise the engine refuses
// only at start ("could not select device driver"), after the solution's
// other components have started. The NVIDIA Container Toolkit registers
// its runtime with the engine (nvidia-ctk runtime configure), which is
// what the engine's info shows of it.
func (d *Docker) checkGPUs(ctx context.Context, m *spec.Manifest) error {
	var want []string
	for _, c := range m.Components {
		if c.Resources.GPU > 0 {
			want = append(want, fmt.Sprintf("%s asks for %d (resources.gpu)", c.Name, c.Resources.GPU))
		}
	}
	if len(want) == 0 {
		return nil
	}
	info, err := d.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("asking the engine for its GPU runtime: %w", err)
	}
	return gpuProblem(m.Name, want, slices.Sorted(maps.Keys(info.Runtimes)))
}

// gpuProblem says why GPUs cannot be had from an engine with runtimes.
func gpuProblem(solution string, want, runtimes []string) error {
	if slices.Contains(runtimes, "nvidia") {
		return nil
	}
	return fmt.Errorf("solution %s needs GPUs (%s), but this Docker engine has no NVIDIA GPU runtime (its runtimes: %s): "+
		"install the NVIDIA driver and the NVIDIA Container Toolkit, run nvidia-ctk runtime configure --runtime=docker and restart dockerd, or deploy it where there are GPUs",
		solution, strings.Join(want, ", "), strings.Join(runtimes, ", "))
}
