package controller

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/aimhub/aim/internal/solution"
)

// volumeRuntime is a runtime that keeps solutions' volumes (the Docker
// runtime does). Remove leaves them; DeleteVolumes is --delete-data.
type volumeRuntime interface {
	Volumes(ctx context.Context, sol string) ([]solution.Volume, error)
	DeleteVolume(ctx context.Context, sol, vol string) error
	ExportVolume(ctx context.Context, sol, vol string, w io.Writer) error
	ImportVolume(ctx context.Context, sol, vol string, r io.Reader) error
}

var errNoVolumes = errors.New("this runtime keeps no volumes")

func (c *Controller) volumeRT() (volumeRuntime, error) {
	vr, ok := c.rt.(volumeRuntime)
	if !ok {
		return nil, errNoVolumes
	}
	return vr, nil
}

// Volumes lists what the runtime keeps for the solution name, which may
// have been removed.
func (c *Controller) Volumes(ctx context.Context, name string) ([]solution.Volume, error) {
	vr, err := c.volumeRT()
	if err != nil {
		return nil, nil
	}
	return vr.Volumes(ctx, name)
}

// DeleteVolume deletes a volume of a solution that has been removed.
func (c *Controller) DeleteVolume(ctx context.Context, name, vol string) error {
	if s := c.get(name); s != nil {
		return &solution.InputError{Msg: fmt.Sprintf("solution %s still exists: remove it with its data (aim rm --delete-data %s)", name, name)}
	}
	vr, err := c.volumeRT()
	if err != nil {
		return err
	}
	return vr.DeleteVolume(ctx, name, vol)
}

// ExportVolume writes a volume's files as a tar stream. A solution that
// is awake may write while this reads: docs/operations.md says to sleep
// it first for a consistent copy.
func (c *Controller) ExportVolume(ctx context.Context, name, vol string, w io.Writer) error {
	vr, err := c.volumeRT()
	if err != nil {
		return err
	}
	return vr.ExportVolume(ctx, name, vol, w)
}

// ImportVolume adds a tar stream's files to a volume of a solution that
// is not running (asleep, failed or removed): a running one would not
// expect its files to change under it.
func (c *Controller) ImportVolume(ctx context.Context, name, vol string, r io.Reader) error {
	vr, err := c.volumeRT()
	if err != nil {
		return err
	}
	if s := c.get(name); s != nil {
		s.op.Lock()
		defer s.op.Unlock()
		if _, st, _ := s.snapshot(); st != solution.Sleeping && st != solution.Failed {
			return &solution.InputError{Msg: fmt.Sprintf("solution %s is %s: put it to sleep first (aim sleep %s), so that nothing writes the volume while it is replaced", name, st, name)}
		}
	}
	return vr.ImportVolume(ctx, name, vol, r)
}
