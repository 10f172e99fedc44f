package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/parts"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/render"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/shape"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

// Method describes, in one sentence, what the score is.
const Method = "D2 shape distribution (64-bin histogram of distances between all pairs of 4096 area-weighted surface samples, divided by their mean) plus principal extent ratios; score = 1 - weighted distance, in [0, 1]. Invariant to position, rotation, uniform scale and mirroring."

type config struct {
	MaxUpload    int64
	MaxTriangles int
}

type entry struct {
	parts.Part
	Triangles int `json:"triangles"`
	desc      *shape.Descriptor
	preview   []byte
	stl       []byte
}

type collection struct {
	parts []*entry
	byID  map[string]*entry
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

// loadCollection reads *.stl files (and parts.json) from dir, or generates
// the demo collection when dir is empty; descriptors and previews are
// computed in parallel.
func loadCollection(dir string) (*collection, error) {
	var ps []parts.Part
	if dir == "" {
		ps = parts.Collection()
	} else {
		meta := map[string]parts.Part{}
		if b, err := os.ReadFile(filepath.Join(dir, "parts.json")); err == nil {
			var list []parts.Part
			if err := json.Unmarshal(b, &list); err != nil {
				return nil, fmt.Errorf("parts.json: %w", err)
			}
			for _, p := range list {
				meta[p.ID] = p
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		files, err := filepath.Glob(filepath.Join(dir, "*.stl"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			id := strings.TrimSuffix(filepath.Base(f), ".stl")
			if !idRE.MatchString(id) {
				return nil, fmt.Errorf("%s: file name must match %s", f, idRE)
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			m, _, err := stl.Parse(data, stl.Limits{})
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			p, ok := meta[id]
			if !ok {
				p = parts.Part{ID: id, Name: id, Family: strings.SplitN(id, "-", 2)[0]}
			}
			p.ID, p.Mesh = id, m
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no parts (PARTS_DIR=%q has no *.stl files)", dir)
	}
	c := &collection{byID: map[string]*entry{}}
	c.parts = make([]*entry, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			e := &entry{Part: p, Triangles: len(p.Mesh.Triangles)}
			var err error
			if e.desc, err = shape.Describe(p.Mesh); err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.ID, err)
				return
			}
			if e.preview, err = render.PNG(p.Mesh, 160); err != nil {
				errs[i] = err
				return
			}
			var buf bytes.Buffer
			stl.WriteBinary(&buf, p.Mesh, "aim part-comparer "+p.ID)
			e.stl = buf.Bytes()
			e.Mesh = nil // keep only the encoded copy
			c.parts[i] = e
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(c.parts, func(i, j int) bool { return c.parts[i].ID < c.parts[j].ID })
	for _, e := range c.parts {
		if c.byID[e.ID] != nil {
			return nil, fmt.Errorf("duplicate part id %q", e.ID)
		}
		c.byID[e.ID] = e
	}
	return c, nil
}

// Result is one ranked part.
type Result struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Family string  `json:"family"`
	Score  float64 `json:"score"`
}

// Rank returns the k parts most similar to d, best first.
func (c *collection) Rank(d *shape.Descriptor, k int) []Result {
	rs := make([]Result, len(c.parts))
	for i, e := range c.parts {
		rs[i] = Result{ID: e.ID, Name: e.Name, Family: e.Family, Score: shape.Similarity(d, e.desc)}
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Score > rs[j].Score })
	if k < len(rs) {
		rs = rs[:k]
	}
	for i := range rs {
		rs[i].Score = float64(int(rs[i].Score*10000+0.5)) / 10000
	}
	return rs
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// ParseK reads ?k= (default 10, 1..100).
func parseK(r *http.Request) (int, error) {
	s := r.URL.Query().Get("k")
	if s == "" {
		return 10, nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 || k > 100 {
		return 0, fmt.Errorf("k must be an integer from 1 to 100, got %q", s)
	}
	return k, nil
}

func newServer(c *collection, cfg config) http.Handler {
	mux := http.NewServeMux()
	// At most NumCPU comparisons at once: each takes ~20-50 ms of CPU and
	// holds the upload in memory.
	slots := make(chan struct{}, runtime.NumCPU())

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "ok", "parts": len(c.parts)})
	})
	mux.HandleFunc("GET /parts", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"method": Method, "parts": c.parts})
	})
	mux.HandleFunc("GET /parts/{id}/preview.png", func(w http.ResponseWriter, r *http.Request) {
		e := c.byID[r.PathValue("id")]
		if e == nil {
			writeError(w, 404, "no such part")
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(e.preview)
	})
	mux.HandleFunc("GET /parts/{id}/model.stl", func(w http.ResponseWriter, r *http.Request) {
		e := c.byID[r.PathValue("id")]
		if e == nil {
			writeError(w, 404, "no such part")
			return
		}
		w.Header().Set("Content-Type", "model/stl")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", e.ID+".stl"))
		w.Write(e.stl)
	})
	mux.HandleFunc("POST /compare", func(w http.ResponseWriter, r *http.Request) {
		k, err := parseK(r)
		if err != nil {
			writeError(w, 400, err.Error())
			return
		}
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cfg.MaxUpload))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, 413, fmt.Sprintf("file larger than %d bytes", cfg.MaxUpload))
				return
			}
			writeError(w, 400, "reading the request body: "+err.Error())
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-r.Context().Done():
			return
		}
		m, format, err := stl.Parse(data, stl.Limits{MaxTriangles: cfg.MaxTriangles})
		if err != nil {
			writeError(w, 400, err.Error())
			return
		}
		d, err := shape.Describe(m)
		if err != nil {
			writeError(w, 400, "invalid STL: "+err.Error())
			return
		}
		png, err := render.PNG(m, 160)
		if err != nil {
			writeError(w, 500, err.Error())
			return
		}
		writeJSON(w, 200, map[string]any{
			"query": map[string]any{
				"format":    format,
				"triangles": len(m.Triangles),
				"preview":   "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
			},
			"method":  Method,
			"results": c.Rank(d, k),
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 404, "not found")
	})
	return mux
}
