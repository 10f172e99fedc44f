// Package docker runs solutions as containers of one Docker engine.
//
// Every container carries labels naming its solution, component,
// generation and replica, so that a restarted aim finds what it started
// (the labels are the only state kept in the engine). Each solution has
// its own bridge network; its components join it under their component
// name, so siblings reach one another and nothing else does.
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/aimhub/aim/internal/runtime"
)

// Labels aim puts on what it creates.
const (
	LabelManaged    = "dev.aim.managed"
	LabelSolution   = "dev.aim.solution"
	LabelComponent  = "dev.aim.component"
	LabelGeneration = "dev.aim.generation"
	LabelReplica    = "dev.aim.replica"
	LabelPublic     = "dev.aim.public"
	// LabelTrial marks a deploy's throwaway replica (see Trial): never
	// routed to, never counted as a replica.
	LabelTrial = "dev.aim.trial"
)

// Docker is a runtime.Runtime on a Docker engine.
type Docker struct {
	cli    *client.Client
	log    *slog.Logger
	prefix string
	fw     *Firewall
}

var _ runtime.Runtime = (*Docker)(nil)

// Options configure New.
type Options struct {
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Prefix starts the names of containers and networks; empty means
	// "aim". Tests use their own so that parallel runs don't meet.
	Prefix string
	// Firewall confines each solution's network (docs/security.md); nil
	// means solutions' egress is not restricted beyond egress: none.
	Firewall *Firewall
}

// New connects to the engine named by the environment (DOCKER_HOST and
// friends) and checks that it answers.
func New(ctx context.Context, o Options) (*Docker, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker engine: %w", err)
	}
	if _, err := cli.Ping(ctx); err != nil {
		cli.Close()
		return nil, fmt.Errorf("the Docker engine does not answer (is dockerd running? DOCKER_HOST=%q): %w", cli.DaemonHost(), err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Prefix == "" {
		o.Prefix = "aim"
	}
	d := &Docker{cli: cli, log: o.Logger, prefix: o.Prefix, fw: o.Firewall}
	if d.fw != nil {
		nws, err := cli.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			cli.Close()
			return nil, fmt.Errorf("listing networks: %w", err)
		}
		live := map[string]bool{}
		for _, nw := range nws {
			live[bridgeName(nw)] = true
		}
		if err := d.fw.Prune(live); err != nil {
			d.log.Warn("removing the egress rules of gone networks", slog.Any("err", err))
		}
	}
	return d, nil
}

// Client exposes the engine client for the parts of aim that build and
// check images on the same engine.
func (d *Docker) Client() *client.Client { return d.cli }

// Prefix starts the names of what this runtime creates.
func (d *Docker) Prefix() string { return d.prefix }

// Close releases the client.
func (d *Docker) Close() error { return d.cli.Close() }

func (d *Docker) networkName(solution string) string { return d.prefix + "-" + solution }

func (d *Docker) containerName(solution, component string, gen int64, replica int) string {
	return fmt.Sprintf("%s-%s-%s-g%d-%d", d.prefix, solution, component, gen, replica)
}

// solutionFilter selects what aim (with this prefix) made for solution; an
// empty solution selects everything aim made.
func (d *Docker) solutionFilter(solution string) filters.Args {
	f := filters.NewArgs(filters.Arg("label", LabelManaged+"="+d.prefix))
	if solution != "" {
		f.Add("label", LabelSolution+"="+solution)
	}
	return f
}

func (d *Docker) containers(ctx context.Context, solution string) ([]container.Summary, error) {
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.solutionFilter(solution)})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	return cs, nil
}

func generationOf(labels map[string]string) int64 {
	g, _ := strconv.ParseInt(labels[LabelGeneration], 10, 64)
	return g
}

func isTrial(labels map[string]string) bool { return labels[LabelTrial] != "" }

func replicaOf(labels map[string]string) int {
	r, _ := strconv.Atoi(labels[LabelReplica])
	return r
}
