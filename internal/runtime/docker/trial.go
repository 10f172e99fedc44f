package docker

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/spec"
)

// trialTmpFiles bounds the files a trial lists under /tmp.
const trialTmpFiles = 5

// Trial runs a throwaway replica of a component of s, as its replicas run
// but unseen by its siblings (no network alias) and without a restart
// policy, until answers says it answers (for at most within); then it
// stops it as a sleep does
// (SIGTERM, SIGKILL after StopGrace) and removes it. Before it starts, it
// reads what the image has under /tmp; once it answers, what it wrote
// there. A trial that does not answer before ctx ends, or exits first,
// reports Answered false: the deploy's replicas tell why. Prune removes a
// trial that an aim stopped in the middle of one left behind.
func (d *Docker) Trial(ctx context.Context, s runtime.Spec, component string, answers func(ctx context.Context, addr string) bool, within time.Duration) (*runtime.Trial, error) {
	comp, ok := s.Manifest.Component(component)
	if !ok {
		return nil, fmt.Errorf("solution %s has no component %q", s.Manifest.Name, component)
	}
	inspected, err := d.cli.ImageInspect(ctx, s.Images[comp.Name])
	if err != nil {
		return nil, fmt.Errorf("component %s: image %q: %w", comp.Name, s.Images[comp.Name], err)
	}
	img := ImageOf(inspected)
	netName := d.networkName(s.Manifest.Name)
	cfg, host, _ := createOptions(s, comp, 0, img, d.prefix, netName)
	if err := addSecrets(ctx, s, comp, cfg); err != nil {
		return nil, err
	}
	cfg.Labels[LabelTrial] = "true"
	cfg.Labels[LabelReplica] = "trial"
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	host.Mounts = nil
	maps.Copy(host.Tmpfs, ScratchTmpfs(comp, cmp.Or(cfg.User, img.User)))
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}}
	name := fmt.Sprintf("%s-%s-%s-g%d-trial", d.prefix, s.Manifest.Name, comp.Name, s.Generation)
	id, err := d.createNamed(ctx, s.Manifest.Name, comp.Name, name, cfg, host, netCfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := d.cli.ContainerRemove(rctx, id, container.RemoveOptions{Force: true}); err != nil {
			d.log.Warn("removing a trial replica", "container", name, "err", err)
		}
	}()
	tr := &runtime.Trial{Component: comp.Name, Command: img.Command(), WorkingDir: img.WorkingDir, Grace: StopGrace}
	if img.WorkingDir == "" {
		tr.WorkingDir = "/"
	}
	tr.ImageTmp, tr.ImageTmpMore, err = TmpFiles(ctx, d.cli, id, trialTmpFiles)
	if err != nil {
		d.log.Warn("reading the image's /tmp", "component", comp.Name, "err", err)
	}
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return tr, nil // the replicas' start says why
	}
	actx, cancel := context.WithTimeout(ctx, within)
	pid, ok := d.awaitTrial(actx, id, netName, answers)
	cancel()
	if !ok {
		return tr, nil
	}
	tr.Answered = true
	if files, err := Writes(pid, WritableDirs(comp), trialTmpFiles+1); err == nil {
		tr.TmpSeen, tr.TmpWrites = true, files
	}
	start := time.Now()
	if err := d.cli.ContainerStop(ctx, id, container.StopOptions{}); err != nil {
		return nil, fmt.Errorf("stopping the trial of %s: %w", comp.Name, err)
	}
	tr.Stopped = time.Since(start)
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("inspecting the trial of %s: %w", comp.Name, err)
	}
	if info.State != nil {
		tr.ExitCode = info.State.ExitCode
	}
	// 137 is 128+SIGKILL: the engine's kill at the grace's end.
	tr.Killed = tr.ExitCode == 137 && tr.Stopped >= StopGrace-time.Second
	return tr, nil
}

// awaitTrial polls a trial until answers says it answers, and returns its
// process's pid; ok is false when it exits first or ctx ends.
func (d *Docker) awaitTrial(ctx context.Context, id, netName string, answers func(context.Context, string) bool) (pid int, ok bool) {
	for {
		info, err := d.cli.ContainerInspect(ctx, id)
		if err != nil || info.State == nil || !info.State.Running {
			return 0, false
		}
		if info.NetworkSettings == nil {
			continue
		}
		if ep := info.NetworkSettings.Networks[netName]; ep != nil && ep.IPAddress != "" {
			if answers(ctx, net.JoinHostPort(ep.IPAddress, strconv.Itoa(spec.Port))) {
				return info.State.Pid, true
			}
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
