package api

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aimhub/aim/internal/solution"
)

// Volumes is what a controller that keeps solutions' volumes (spec.Volume)
// offers. They outlive the solution: Remove keeps them, DeleteVolume
// deletes one of a removed solution.
type Volumes interface {
	Volumes(ctx context.Context, name string) ([]solution.Volume, error)
	DeleteVolume(ctx context.Context, name, vol string) error
	ExportVolume(ctx context.Context, name, vol string, w io.Writer) error
	ImportVolume(ctx context.Context, name, vol string, r io.Reader) error
}

func (a *API) volumeController(w http.ResponseWriter) (Volumes, bool) {
	vc, ok := a.ctl.(Volumes)
	if !ok {
		writeError(w, http.StatusNotImplemented, "this aim keeps no volumes")
	}
	return vc, ok
}

// visibleVolumes are the volumes of {name} that g may reach: those of
// the solution's owner while it exists (all of them for an admin), and
// once it is removed those of an owner g manages. A volume kept from an
// earlier solution of the name that belonged to someone else is not the
// new holder's to see.
func visibleVolumes(ctx context.Context, vc Volumes, name string, g *grant) ([]solution.Volume, error) {
	vs, err := vc.Volumes(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []solution.Volume{}
	for _, v := range vs {
		if g.id.IsAdmin() || g.sol != nil && v.Owner == g.sol.Owner || g.sol == nil && g.id.Manages(v.Owner) {
			out = append(out, v)
		}
	}
	return out, nil
}

// visibleVolume is the volume {volume} of {name}, if g may reach it.
func visibleVolume(ctx context.Context, vc Volumes, r *http.Request, g *grant) (solution.Volume, error) {
	name, vol := r.PathValue("name"), r.PathValue("volume")
	vs, err := visibleVolumes(ctx, vc, name, g)
	if err != nil {
		return solution.Volume{}, err
	}
	for _, v := range vs {
		if v.Name == vol {
			return v, nil
		}
	}
	return solution.Volume{}, fmt.Errorf("solution %s has no volume %q: %w", name, vol, solution.ErrNotFound)
}

func (a *API) volumes(w http.ResponseWriter, r *http.Request, g *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
		return
	}
	vs, err := visibleVolumes(r.Context(), vc, r.PathValue("name"), g)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"volumes": vs})
}

// TrailerError is the trailer that carries an export's error once its
// tar stream has begun: the status is sent by then.
const TrailerError = "X-Aim-Error"

// exportVolume streams a volume as a tar. Errors before the first byte
// get their own status; a later one ends the stream early and is named in
// the trailer.
func (a *API) exportVolume(w http.ResponseWriter, r *http.Request, g *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
		return
	}
	if _, err := visibleVolume(r.Context(), vc, r, g); err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Trailer", TrailerError)
	lw := &lazyWriter{w: w}
	err := vc.ExportVolume(r.Context(), r.PathValue("name"), r.PathValue("volume"), lw)
	switch {
	case err != nil && !lw.started:
		w.Header().Del("Trailer")
		a.fail(w, err)
	case err != nil:
		a.log.Warn("exporting a volume", "solution", r.PathValue("name"), "volume", r.PathValue("volume"), "err", err)
		w.Header().Set(TrailerError, err.Error())
	case !lw.started:
		lw.start()
	}
}

// lazyWriter sends the status and the tar type with the first byte.
type lazyWriter struct {
	w       http.ResponseWriter
	started bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", "application/x-tar")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(b)
}

// importVolume adds a tar stream's files to a volume, at most twice the
// volume's declared size (the tar's headers add to its files).
func (a *API) importVolume(w http.ResponseWriter, r *http.Request, g *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
		return
	}
	v, err := visibleVolume(r.Context(), vc, r, g)
	if err != nil {
		a.fail(w, err)
		return
	}
	limit := max(2*int64(v.Size), 64<<20)
	if err := vc.ImportVolume(r.Context(), r.PathValue("name"), v.Name, http.MaxBytesReader(w, r.Body, limit)); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
