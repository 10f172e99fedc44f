package dockercheck

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"path/filepath"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/aimhub/aim/internal/buildctx"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/spec"
)

// LabelCheck marks every container and network a check creates; its value
// is the run's ID. Cleanup removes by this label, so that nothing a run
// started survives it, even what a cancelled create left behind.
const LabelCheck = "dev.aim.check"

// API is the part of the Docker engine's API a check calls: its own
// containers and network, and the images it inspects. *client.Client
// implements it; so can a test's recorder.
type API interface {
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, container string, options container.StartOptions) error
	ContainerInspect(ctx context.Context, container string) (container.InspectResponse, error)
	ContainerKill(ctx context.Context, container, signal string) error
	ContainerLogs(ctx context.Context, container string, options container.LogsOptions) (io.ReadCloser, error)
	ContainerDiff(ctx context.Context, container string) ([]container.FilesystemChange, error)
	CopyFromContainer(ctx context.Context, container, srcPath string) (io.ReadCloser, container.PathStat, error)
	ContainerStatsOneShot(ctx context.Context, container string) (container.StatsResponseReader, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerRemove(ctx context.Context, container string, options container.RemoveOptions) error
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkInspect(ctx context.Context, network string, options network.InspectOptions) (network.Inspect, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, network string) error
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (image.InspectResponse, error)
}

var _ API = (*client.Client)(nil)

// Builder makes and fetches the images a check runs: aim's Docker
// runtime, whose builder aim deploy uses too, so a check builds what a
// deploy would.
type Builder interface {
	Build(ctx context.Context, buildContext io.Reader, dockerfile, tag string, progress func(string)) error
	EnsureImage(ctx context.Context, ref string, progress func(string)) error
}

var _ Builder = (*docker.Docker)(nil)

// session is one check run's footprint on the engine.
type session struct {
	cli    API
	id     string
	extra  map[string]string // Options.Labels and the solution's name
	net    string            // network name
	subnet netip.Prefix      // of net
}

func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LabelSolution names the solution a check container or network is for.
const LabelSolution = "dev.aim.check.solution"

func (s *session) labels() map[string]string {
	l := map[string]string{LabelCheck: s.id}
	for k, v := range s.extra {
		l[k] = v
	}
	return l
}

// createNetwork makes the run's network: internal, so that the engine
// gives it no route out; the host still reaches the containers' addresses.
func (s *session) createNetwork(ctx context.Context) error {
	s.net = "aim-check-" + s.id
	resp, err := s.cli.NetworkCreate(ctx, s.net, network.CreateOptions{
		Driver:   "bridge",
		Internal: true,
		Labels:   s.labels(),
		Options:  map[string]string{"com.docker.network.bridge.enable_icc": "true"},
	})
	if err != nil {
		return fmt.Errorf("creating network %s: %w", s.net, err)
	}
	ni, err := s.cli.NetworkInspect(ctx, resp.ID, network.InspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting network %s: %w", s.net, err)
	}
	for _, c := range ni.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			s.subnet = p
		}
	}
	return nil
}

// containerSpec is the container definition of component comp, the same
// as aim's runtime gives it (read-only root filesystem, tmpfs /tmp, no
// capabilities, no new privileges, memory, CPU and pids limits, uid 65534
// for a root image) except for the restart policy: a check wants to see a
// crash, not a restart. writable drops the read-only root filesystem, for
// the run that finds what the component writes.
func (s *session) containerSpec(m *spec.Manifest, comp spec.Component, image string, img docker.Image, def spec.Defaults, writable bool) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	cfg, host := docker.Confined(m.Name, comp, image, img, def)
	// Empty directories at the volumes' paths: a check never sees, nor
	// writes, a solution's data.
	maps.Copy(host.Tmpfs, docker.ScratchTmpfs(comp, cmp.Or(cfg.User, img.User)))
	cfg.Labels = s.labels()
	cfg.Labels["dev.aim.component"] = comp.Name
	host.NetworkMode = container.NetworkMode(s.net)
	ep := &network.EndpointSettings{}
	if writable {
		// The writable twin keeps the image's own user, with the engine's
		// default capabilities: as uid 65534, or as a root without
		// CAP_CHOWN and CAP_SETUID, a program such as nginx stops at its
		// first chown or setuid, and the diff would not show what it goes
		// on to write. It is invisible to siblings: only the read-only run
		// answers to the name. It keeps no-new-privileges and the
		// internal network.
		host.ReadonlyRootfs = false
		host.CapDrop = nil
		cfg.User = ""
	} else {
		ep.Aliases = []string{comp.Name}
	}
	return cfg, host, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.net: ep}}
}

// start creates and starts a container and returns its ID. created, when
// not nil, runs between the two, while the container's /tmp is still the
// image's. An engine that cannot run the container's command returns a
// *startFailure: a finding, not a failed check.
func (s *session) start(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig, nc *network.NetworkingConfig, created func(id string)) (string, error) {
	resp, err := s.cli.ContainerCreate(ctx, cfg, host, nc, nil, name)
	if err != nil {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	if created != nil {
		created(resp.ID)
	}
	if err := s.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		if cause, ok := docker.CommandCause(err.Error()); ok {
			return resp.ID, &startFailure{cause: cause}
		}
		return resp.ID, fmt.Errorf("starting %s: %w", name, err)
	}
	return resp.ID, nil
}

// startFailure is a container whose command the engine could not run.
type startFailure struct{ cause string }

func (e *startFailure) Error() string { return e.cause }

// cleanup removes every container (with its anonymous volumes) and network
// labelled with the run's ID. It ignores ctx's cancellation: it is what
// runs after an interrupt.
func (s *session) cleanup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	return Cleanup(ctx, s.cli, s.id)
}

// Cleanup removes the containers, their anonymous volumes, and the
// networks of check run id; an empty id removes those of every run (for
// leftovers of a check that was killed).
func Cleanup(ctx context.Context, cli API, id string) error {
	label := LabelCheck
	if id != "" {
		label += "=" + id
	}
	f := filters.NewArgs(filters.Arg("label", label))
	var errs []error
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("listing check containers: %w", err)
	}
	for _, c := range cs {
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing container %s: %w", c.ID[:12], err))
		}
	}
	ns, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("listing check networks: %w", err))...)
	}
	for _, n := range ns {
		if err := cli.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
	return errors.Join(errs...)
}

// buildImages builds the components of m that name a build directory
// (relative to dir) and returns every component's image reference.
func buildImages(ctx context.Context, eng Builder, m *spec.Manifest, dir string, progress func(string)) (map[string]string, error) {
	images := map[string]string{}
	for _, c := range m.Components {
		if c.Build == "" {
			images[c.Name] = c.Image
			continue
		}
		tag := "aim-check/" + m.Name + "-" + c.Name + ":latest"
		if progress != nil {
			progress(fmt.Sprintf("building %s from %s", c.Name, filepath.Join(dir, c.Build)))
		}
		rc, err := buildctx.Tar(filepath.Join(dir, c.Build), c.Dockerfile)
		if err != nil {
			return nil, fmt.Errorf("component %s: packing %s: %w", c.Name, c.Build, err)
		}
		err = eng.Build(ctx, rc, c.Dockerfile, tag, progress)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		images[c.Name] = tag
	}
	return images, nil
}
