// Package runtime defines what the single-host controller
// (internal/controller) needs from the engine that runs containers; the
// docker package implements it. It is not the seam to Kubernetes: there
// the operator reconciles Solutions and the API's backend
// (internal/kube/backend) writes them, so the two ways of running aim
// meet one level up, at api.Controller (docs/architecture.md says why).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// ErrNotFound is returned when a solution has nothing in the runtime.
var ErrNotFound = errors.New("not found")

// CommandError is a container the engine created but could not start
// because its command cannot run: the program is missing, not
// executable, or built for another machine. The process never began, so
// it left no output; Cause is the engine's reason, without its wrapping.
type CommandError struct {
	Component string
	// Command is the ENTRYPOINT and CMD the container has.
	Command []string
	// Path is the container's PATH.
	Path  string
	Cause string
	Err   error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("component %s: the engine could not run [%s]: %s", e.Component, strings.Join(e.Command, " "), e.Cause)
}

func (e *CommandError) Unwrap() error { return e.Err }

// Trial is what a throwaway replica of a component showed: started beside
// a deploy's replicas, never routed to, and stopped as a sleep stops one.
// It tells a deploy what only a run shows: how the component takes
// SIGTERM, and what it writes.
type Trial struct {
	Component string
	// Command is the ENTRYPOINT and CMD the container ran.
	Command []string
	// WorkingDir is the container's working directory.
	WorkingDir string
	// ImageTmp lists files the image has under /tmp, which the tmpfs
	// there hides: the first few, ImageTmpMore when there are more.
	ImageTmp     []string
	ImageTmpMore bool
	// Answered is true when the replica answered; the fields below are
	// zero when it did not.
	Answered bool
	// TmpWrites lists the files it had written under /tmp and its
	// writable paths when it
	// answered. TmpSeen says /tmp could be read at all (that needs the
	// engine's host).
	TmpWrites []string
	TmpSeen   bool
	// Stopped is how long it took to end after SIGTERM; Killed says it was
	// still running after Grace and was ended by SIGKILL.
	Stopped  time.Duration
	Grace    time.Duration
	Killed   bool
	ExitCode int
}

// Spec is one generation of a solution, ready to run: the validated
// manifest and the image each component runs.
type Spec struct {
	Manifest *spec.Manifest
	// Images maps component names to image references the runtime has.
	Images map[string]string
	// Generation increases with every deploy; containers of other
	// generations are pruned once this one answers.
	Generation int64
	// Defaults fill the manifest's unset resources.
	Defaults spec.Defaults
	// Secrets returns the values of the solution's secrets, by name, for
	// the environment of the containers being created; it is called only
	// then, so that values are read as late and kept as briefly as can
	// be. Nil means the solution has none.
	Secrets func(ctx context.Context) (map[string]string, error)
	// Owner is the provider the solution belongs to (empty: the admins).
	// Volumes remember it: one kept from a removed solution is reused
	// only by a deploy for the same owner.
	Owner string
}

// Runtime runs solutions. Implementations are safe for concurrent use on
// different solutions; the controller serialises calls for one solution.
type Runtime interface {
	// Apply creates and starts the containers of s.Generation, replicas of
	// each component, and the solution's network. It does not wait for
	// them to answer. Containers of that generation that exist are kept.
	Apply(ctx context.Context, s Spec, replicas int) error
	// Scale sets every component of generation gen to replicas; 0 stops
	// them all (the solution sleeps) and keeps them for a fast wake.
	Scale(ctx context.Context, s Spec, replicas int) error
	// Prune removes the containers of every generation but keep.
	Prune(ctx context.Context, name string, keep int64) error
	// Remove deletes everything the solution has in the runtime.
	Remove(ctx context.Context, name string) error
	// Inspect reports the solution's containers, or ErrNotFound.
	Inspect(ctx context.Context, name string) (*Status, error)
	// List reports every solution the runtime has containers for,
	// including ones aim no longer knows (so they can be adopted or
	// removed).
	List(ctx context.Context) ([]Status, error)
	// Logs streams a component's output (all components when component is
	// empty), interleaved by time.
	Logs(ctx context.Context, name, component string, opts LogOptions) (io.ReadCloser, error)
}

// LogOptions select what Logs returns.
type LogOptions struct {
	Follow bool
	// Tail is how many lines of the past to return; 0 means all.
	Tail int
}

// Status is what the runtime has for one solution.
type Status struct {
	Name       string
	Components []ComponentStatus
	// Trials counts the throwaway replicas of a deploy's trials (see
	// Trial). Outside a deploy there are none: any are what an aim that
	// stopped in the middle of one left, for Prune to remove.
	Trials int
}

// ComponentStatus lists a component's replicas of every generation.
type ComponentStatus struct {
	Name     string
	Replicas []Replica
}

// Replica is one running or stopped container (or pod).
type Replica struct {
	ID         string
	Generation int64
	// Index numbers the replicas of a component from 0; scaling to n
	// keeps 0..n-1 and stops the rest.
	Index int
	// Addr is host:port the gateway dials; empty when not running.
	Addr     string
	Running  bool
	ExitCode int
	// OOMKilled says the memory limit ended it.
	OOMKilled bool
	// Restarts counts the runtime's restarts since creation.
	Restarts   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// Pid is the main process's pid on the host, 0 when unknown. It lets
	// aim tell which ports a process that ignores 8080 listens on.
	Pid int
}

// Of returns the replicas of generation gen.
func (c ComponentStatus) Of(gen int64) []Replica {
	var out []Replica
	for _, r := range c.Replicas {
		if r.Generation == gen {
			out = append(out, r)
		}
	}
	return out
}

// Serving returns the replicas of generation gen that a solution scaled
// to n replicas runs: the others are stopped on purpose, not crashed.
func (c ComponentStatus) Serving(gen int64, n int) []Replica {
	var out []Replica
	for _, r := range c.Replicas {
		if r.Generation == gen && r.Index < n {
			out = append(out, r)
		}
	}
	return out
}

// Component returns the named component's status.
func (s *Status) Component(name string) (ComponentStatus, bool) {
	for _, c := range s.Components {
		if c.Name == name {
			return c, true
		}
	}
	return ComponentStatus{}, false
}
