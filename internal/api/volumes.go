package api

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/aimhub/aim/internal/solution"
)

// Volumes is what a controller that keeps solutions' volumes (spec.Volume)
// offers. They outlive the solution: Remove keeps them, DeleteVolumes
// deletes those of a removed solution.
type Volumes interface {
	Volumes(ctx context.Context, name string) ([]solution.Volume, error)
	DeleteVolumes(ctx context.Context, name string) ([]solution.Volume, error)
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

func (a *API) volumes(w http.ResponseWriter, r *http.Request, _ *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
		return
	}
	vs, err := vc.Volumes(r.Context(), r.PathValue("name"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if vs == nil {
		vs = []solution.Volume{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"volumes": vs})
}

// TrailerError is the trailer that carries an export's error once its
// tar stream has begun: the status is sent by then.
const TrailerError = "X-Aim-Error"

// exportVolume streams a volume as a tar. Errors before the first byte
// get their own status; a later one ends the stream early and is named in
// the trailer.
func (a *API) exportVolume(w http.ResponseWriter, r *http.Request, _ *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
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
func (a *API) importVolume(w http.ResponseWriter, r *http.Request, _ *grant) {
	vc, ok := a.volumeController(w)
	if !ok {
		return
	}
	name, vol := r.PathValue("name"), r.PathValue("volume")
	vs, err := vc.Volumes(r.Context(), name)
	if err != nil {
		a.fail(w, err)
		return
	}
	limit := int64(-1)
	for _, v := range vs {
		if v.Name == vol {
			limit = max(2*int64(v.Size), 64<<20)
		}
	}
	if limit < 0 {
		a.fail(w, fmt.Errorf("solution %s has no volume %q: %w", name, vol, solution.ErrNotFound))
		return
	}
	if err := vc.ImportVolume(r.Context(), name, vol, http.MaxBytesReader(w, r.Body, limit)); err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
