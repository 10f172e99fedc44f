package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
)

// nobody is the user a root image runs as unless its manifest says
// runAsRoot.
const nobody = "65534:65534"

// Apply implements runtime.Runtime.
func (d *Docker) Apply(ctx context.Context, s runtime.Spec, replicas int) error {
	if err := d.checkGPUs(ctx, s.Manifest); err != nil {
		return err
	}
	if err := d.ensureNetwork(ctx, s.Manifest.Name, s.Manifest.Egress.Closed()); err != nil {
		return err
	}
	if err := d.ensureVolumes(ctx, s); err != nil {
		return err
	}
	existing, err := d.containers(ctx, s.Manifest.Name)
	if err != nil {
		return err
	}
	have := map[string]container.Summary{}
	for _, c := range existing {
		if generationOf(c.Labels) == s.Generation && !isTrial(c.Labels) {
			have[c.Labels[LabelComponent]+"/"+c.Labels[LabelReplica]] = c
		}
	}
	for _, comp := range s.Manifest.Components {
		for r := 0; r < replicas; r++ {
			key := comp.Name + "/" + strconv.Itoa(r)
			c, ok := have[key]
			id := c.ID
			if !ok {
				if id, err = d.create(ctx, s, comp, r); err != nil {
					return err
				}
			} else if c.State == "running" {
				continue
			}
			if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
				return d.startError(ctx, s.Manifest.Name, comp.Name, id, err)
			}
		}
	}
	return nil
}

// ensureNetwork makes the solution's bridge network. A solution whose
// egress is none gets an internal network: the engine gives it no route
// out, while the host (aim's gateway) still reaches its containers'
// addresses on the bridge.
func (d *Docker) ensureNetwork(ctx context.Context, solution string, internal bool) error {
	name := d.networkName(solution)
	nw, err := d.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	switch {
	case err == nil:
		if nw.Internal != internal {
			// The engine cannot change a network's Internal flag while
			// containers are attached; the new policy holds from the
			// next time the network is made (after the solution is removed).
			d.log.Warn("solution's egress changed; it takes effect when the solution is removed and deployed again",
				slog.String("solution", solution), slog.Bool("internal", nw.Internal), slog.Bool("want internal", internal))
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("inspecting network %s: %w", name, err)
	default:
		_, err := d.cli.NetworkCreate(ctx, name, network.CreateOptions{
			Driver:   "bridge",
			Internal: internal,
			Labels:   map[string]string{LabelManaged: d.prefix, LabelSolution: solution},
			Options: map[string]string{
				// Containers of one solution talk among themselves; other
				// solutions are kept out by the engine's isolation between
				// bridge networks.
				"com.docker.network.bridge.enable_icc": "true",
			},
		})
		if err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("creating network %s: %w", name, err)
		}
		if nw, err = d.cli.NetworkInspect(ctx, name, network.InspectOptions{}); err != nil {
			return fmt.Errorf("inspecting network %s: %w", name, err)
		}
	}
	return d.guard(nw)
}

// guard confines a network's bridge, every time it is ensured, so that
// rules lost (a reboot, a flushed table) come back with the next apply.
func (d *Docker) guard(nw network.Inspect) error {
	if d.fw == nil {
		return nil
	}
	b := bridgeName(nw)
	if b == "" {
		return fmt.Errorf("network %s: no bridge name to confine", nw.Name)
	}
	return d.fw.Guard(b)
}

// StopGrace is how long a container has between SIGTERM and SIGKILL when
// it stops (the packaging standard's sigterm rule).
const StopGrace = 10 * time.Second

// Confined is a component's container as aim runs it, wherever it runs
// it (a solution, or `aim check`): its image, environment and user, a
// read-only root filesystem with a tmpfs /tmp and one at each of its
// writable paths, no capabilities, no new privileges, the memory, CPU and
// pids limits of its manifest or def, and the GPUs it asks for.
// A root image runs as uid 65534 unless the component says runAsRoot, and
// with HOME=/tmp when nothing else sets HOME (defaultHome). Callers add
// labels, the network and, for solutions, a restart policy and the
// volumes (a run that must not touch them, ScratchTmpfs instead).
func Confined(solution string, comp spec.Component, image string, img Image, def spec.Defaults) (*container.Config, *container.HostConfig) {
	res := comp.Resources.Or(def)
	env := []string{
		"PORT=" + strconv.Itoa(spec.Port),
		"AIM_SOLUTION=" + solution,
		"AIM_COMPONENT=" + comp.Name,
	}
	user := ""
	if !comp.RunAsRoot && isRoot(img.User) {
		user = nobody
	}
	if home := defaultHome(img, user, comp.Env); home != "" {
		env = append(env, "HOME="+home)
	}
	for _, k := range spec.EnvKeys(comp.Env) {
		if v := comp.Env[k]; v.Secret == "" {
			env = append(env, k+"="+v.Value)
		}
	}
	stop := int(StopGrace / time.Second)
	pids := res.Pids
	cfg := &container.Config{Image: image, Env: env, User: user, Hostname: comp.Name, StopTimeout: &stop}
	tmpfs := writableTmpfs(comp.Writable, cmp.Or(user, img.User))
	tmpfs["/tmp"] = "rw,nosuid,nodev,size=64m"
	host := &container.HostConfig{
		ReadonlyRootfs: true,
		Tmpfs:          tmpfs,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		Resources: container.Resources{
			Memory:         int64(res.Memory),
			NanoCPUs:       int64(res.CPU) * 1e6,
			PidsLimit:      &pids,
			DeviceRequests: gpuRequests(comp.Resources.GPU),
		},
	}
	return cfg, host
}

// createOptions is the whole definition of a solution's container, kept
// pure so that it can be pinned by golden tests.
func createOptions(s runtime.Spec, comp spec.Component, replica int, img Image, prefix, netName string) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	cfg, host := Confined(s.Manifest.Name, comp, s.Images[comp.Name], img, s.Defaults)
	cfg.Labels = map[string]string{
		LabelManaged:    prefix,
		LabelSolution:   s.Manifest.Name,
		LabelComponent:  comp.Name,
		LabelGeneration: strconv.FormatInt(s.Generation, 10),
		LabelReplica:    strconv.Itoa(replica),
		LabelPublic:     strconv.FormatBool(comp.IsPublic()),
	}
	// The engine restarts a crashed container with its own growing
	// back-off, also while aim itself is down.
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}
	host.NetworkMode = container.NetworkMode(netName)
	host.Mounts = volumeMounts(prefix, s.Manifest.Name, comp)
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {Aliases: []string{comp.Name}},
	}}
	return cfg, host, netCfg
}

func isRoot(user string) bool {
	u, _, _ := strings.Cut(user, ":")
	return u == "" || u == "root" || u == "0"
}

func (d *Docker) create(ctx context.Context, s runtime.Spec, comp spec.Component, replica int) (string, error) {
	img, err := d.cli.ImageInspect(ctx, s.Images[comp.Name])
	if err != nil {
		return "", fmt.Errorf("component %s: image %q: %w", comp.Name, s.Images[comp.Name], err)
	}
	cfg, host, netCfg := createOptions(s, comp, replica, ImageOf(img), d.prefix, d.networkName(s.Manifest.Name))
	if err := addSecrets(ctx, s, comp, cfg); err != nil {
		return "", err
	}
	return d.createNamed(ctx, s.Manifest.Name, comp.Name, d.containerName(s.Manifest.Name, comp.Name, s.Generation, replica), cfg, host, netCfg)
}

// addSecrets puts the values of the secrets comp's environment names in
// cfg's environment, read as the container is created. They are in the
// container's configuration, as every environment is, and so in its
// `docker inspect`, but in none of aim's labels: createOptions, which
// golden tests pin, never sees them.
func addSecrets(ctx context.Context, s runtime.Spec, comp spec.Component, cfg *container.Config) error {
	var vals map[string]string
	for _, k := range spec.EnvKeys(comp.Env) {
		v := comp.Env[k]
		if v.Secret == "" {
			continue
		}
		if vals == nil {
			if s.Secrets == nil {
				return fmt.Errorf("component %s: env %s names secret %q, and aim has no secrets for %s", comp.Name, k, v.Secret, s.Manifest.Name)
			}
			var err error
			if vals, err = s.Secrets(ctx); err != nil {
				return fmt.Errorf("component %s: reading the secrets of %s: %w", comp.Name, s.Manifest.Name, err)
			}
		}
		val, ok := vals[v.Secret]
		if !ok {
			return fmt.Errorf("component %s: env %s names secret %q, which is not set (aim secret set %s %s)", comp.Name, k, v.Secret, s.Manifest.Name, v.Secret)
		}
		cfg.Env = append(cfg.Env, k+"="+val)
	}
	return nil
}

func (d *Docker) createNamed(ctx context.Context, sol, comp, name string, cfg *container.Config, host *container.HostConfig, netCfg *network.NetworkingConfig) (string, error) {
	resp, err := d.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	if errdefs.IsConflict(err) {
		// A container of that name is left from a crash between create
		// and label lookup; it is ours by name, so replace it.
		_ = d.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		resp, err = d.cli.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	}
	if err != nil {
		return "", fmt.Errorf("creating %s/%s: %w", sol, comp, err)
	}
	return resp.ID, nil
}

// startError says why the engine did not start a container: a
// CommandError when its command cannot run, which is the provider's to
// fix and which the engine words as an OCI runtime message.
func (d *Docker) startError(ctx context.Context, sol, comp, id string, err error) error {
	err = fmt.Errorf("starting %s/%s: %w", sol, comp, err)
	cause, ok := CommandCause(err.Error())
	if !ok {
		return err
	}
	ce := &runtime.CommandError{Component: comp, Cause: cause, Err: err}
	if info, ierr := d.cli.ContainerInspect(ctx, id); ierr == nil && info.Config != nil {
		ce.Command = append(slices.Clone(info.Config.Entrypoint), info.Config.Cmd...)
		ce.Path = Image{Env: info.Config.Env}.Getenv("PATH")
	}
	return ce
}

// Scale implements runtime.Runtime.
func (d *Docker) Scale(ctx context.Context, s runtime.Spec, replicas int) error {
	if replicas > 0 {
		return errors.Join(d.Apply(ctx, s, replicas), d.stopAbove(ctx, s, replicas))
	}
	return d.stopAbove(ctx, s, 0)
}

// stopAbove stops the replicas numbered n and up of generation s.Generation.
func (d *Docker) stopAbove(ctx context.Context, s runtime.Spec, n int) error {
	cs, err := d.containers(ctx, s.Manifest.Name)
	if err != nil {
		return err
	}
	// The replicas stop at once, not one after another: one that ignores
	// SIGTERM holds its own stop for StopGrace, not its siblings'.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range cs {
		// A container the engine is restarting counts as running: stopping
		// it is what ends the restart loop.
		if isTrial(c.Labels) || generationOf(c.Labels) != s.Generation || replicaOf(c.Labels) < n || c.State == "exited" || c.State == "created" || c.State == "dead" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := d.cli.ContainerStop(ctx, c.ID, container.StopOptions{})
			if err != nil && !errdefs.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stopping %s: %w", strings.TrimPrefix(c.Names[0], "/"), err))
				mu.Unlock()
				return
			}
			if took := time.Since(start); took >= StopGrace {
				d.log.Warn("a replica ignored SIGTERM and was killed after the stop grace", "solution", s.Manifest.Name,
					"component", c.Labels[LabelComponent], "took", took.Round(time.Millisecond))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Prune implements runtime.Runtime.
func (d *Docker) Prune(ctx context.Context, name string, keep int64) error {
	cs, err := d.containers(ctx, name)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range cs {
		// A trial left by an aim that stopped mid-deploy goes too.
		if generationOf(c.Labels) == keep && !isTrial(c.Labels) {
			continue
		}
		if err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("removing %s: %w", c.ID[:12], err))
		}
	}
	return errors.Join(errs...)
}

// Remove implements runtime.Runtime.
func (d *Docker) Remove(ctx context.Context, name string) error {
	if err := d.Prune(ctx, name, -1); err != nil {
		return err
	}
	nw, ierr := d.cli.NetworkInspect(ctx, d.networkName(name), network.InspectOptions{})
	if err := d.cli.NetworkRemove(ctx, d.networkName(name)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("removing network of %s: %w", name, err)
	}
	if ierr == nil && d.fw != nil {
		if b := bridgeName(nw); b != "" {
			return d.fw.Release(b)
		}
	}
	return nil
}
