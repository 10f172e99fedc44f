package api

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
)

// list answers the solutions the caller may find (auth.Lists), each as
// the caller may see it.
func (a *API) list(w http.ResponseWriter, r *http.Request, g *grant) {
	out := []*solution.Info{}
	for _, info := range a.ctl.List(r.Context()) {
		if listed(g.id, info) {
			out = append(out, view(g.id, info))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"solutions": out})
}

func (a *API) get(w http.ResponseWriter, _ *http.Request, g *grant) {
	writeJSON(w, http.StatusOK, view(g.id, g.sol))
}

// remove deletes a solution and says what it did with its volumes: kept,
// or deleted with ?deleteData=true (also of a solution removed before).
func (a *API) remove(w http.ResponseWriter, r *http.Request, g *grant) {
	name := r.PathValue("name")
	if g.sol != nil {
		if err := a.ctl.Remove(r.Context(), name); err != nil {
			a.fail(w, err)
			return
		}
		// On Kubernetes the store holds no solution to remove it with.
		if err := a.thumbs.DeleteThumbnail(r.Context(), name); err != nil {
			a.fail(w, err)
			return
		}
	}
	var out solution.Removal
	if vc, ok := a.ctl.(Volumes); ok {
		vs, err := visibleVolumes(r.Context(), vc, name, g)
		if err != nil {
			a.fail(w, err)
			return
		}
		if r.URL.Query().Get("deleteData") != "true" {
			out.Kept = vs
			writeJSON(w, http.StatusOK, out)
			return
		}
		for _, v := range vs {
			if err := vc.DeleteVolume(r.Context(), name, v.Name); err != nil {
				a.fail(w, err)
				return
			}
			out.Deleted = append(out.Deleted, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) wake(w http.ResponseWriter, r *http.Request, g *grant) {
	a.act(w, r, g, a.ctl.Wake)
}

func (a *API) sleep(w http.ResponseWriter, r *http.Request, g *grant) {
	a.act(w, r, g, a.ctl.Sleep)
}

// act runs a wake or a sleep and answers the solution as it is then.
func (a *API) act(w http.ResponseWriter, r *http.Request, g *grant, do func(ctx context.Context, name string) error) {
	name := r.PathValue("name")
	if err := do(r.Context(), name); err != nil {
		a.fail(w, err)
		return
	}
	info, err := a.ctl.Get(r.Context(), name)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view(g.id, info))
}

func (a *API) logs(w http.ResponseWriter, r *http.Request, _ *grant) {
	q := r.URL.Query()
	opts := runtime.LogOptions{Follow: q.Get("follow") == "true"}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "tail must be a whole number of lines")
			return
		}
		opts.Tail = n
	}
	rc, err := a.ctl.Logs(r.Context(), r.PathValue("name"), q.Get("component"), opts)
	if err != nil {
		a.fail(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w, rc: http.NewResponseController(w)}
	_, _ = io.Copy(fw, rc)
}

type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.w.Write(b)
	_ = f.rc.Flush()
	return n, err
}
