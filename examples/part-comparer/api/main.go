// Command api is the public API of the part-comparer example, served under
// /api (the platform routes /api/... here without stripping the prefix).
// It validates uploads and forwards them to the private engine at
// ENGINE_URL; it exposes only the endpoints listed in openapi.json.
//
// Configuration (environment): PORT (8080), ENGINE_URL
// (http://engine:8080), MAX_UPLOAD_BYTES (10 MiB).
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"
)

//go:embed openapi.json
var openapiJSON []byte

type server struct {
	engine    *url.URL
	client    *http.Client
	maxUpload int64
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%s}\n", strconv.Quote(msg))
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiJSON)
	})
	mux.HandleFunc("GET /api/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{\"status\":\"ok\"}\n"))
	})
	mux.HandleFunc("GET /api/parts", func(w http.ResponseWriter, r *http.Request) {
		s.forward(w, r, http.MethodGet, "/parts", "", "", nil)
	})
	mux.HandleFunc("GET /api/parts/{id}/{file}", func(w http.ResponseWriter, r *http.Request) {
		id, file := r.PathValue("id"), r.PathValue("file")
		if !idRE.MatchString(id) || (file != "preview.png" && file != "model.stl") {
			writeError(w, 404, "not found")
			return
		}
		s.forward(w, r, http.MethodGet, "/parts/"+id+"/"+file, "", "", nil)
	})
	mux.HandleFunc("POST /api/compare", s.compare)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, 404, "not found; see /api/openapi.json")
	})
	return mux
}

// compare reads the multipart field "file", checks that it plausibly is an
// STL file, and lets the engine parse it fully (its 400 errors say exactly
// what is wrong and are passed through).
func (s *server) compare(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Query().Get("k")
	if k != "" {
		if n, err := strconv.Atoi(k); err != nil || n < 1 || n > 50 {
			writeError(w, 400, fmt.Sprintf("k must be an integer from 1 to 50, got %q", k))
			return
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		writeError(w, 415, "send the STL file as multipart/form-data in a field named \"file\"")
		return
	}
	// Room for the multipart envelope around the file.
	r.Body = http.MaxBytesReader(w, r.Body, s.maxUpload+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, 400, "malformed multipart body: "+err.Error())
		return
	}
	var data []byte
	found := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.uploadError(w, err)
			return
		}
		if p.FormName() != "file" || found {
			io.Copy(io.Discard, p)
			continue
		}
		found = true
		data, err = io.ReadAll(io.LimitReader(p, s.maxUpload+1))
		if err != nil {
			s.uploadError(w, err)
			return
		}
		if int64(len(data)) > s.maxUpload {
			writeError(w, 413, fmt.Sprintf("file larger than %d bytes", s.maxUpload))
			return
		}
	}
	if !found {
		writeError(w, 400, "missing multipart field \"file\"")
		return
	}
	if err := sniffSTL(data); err != nil {
		writeError(w, 400, err.Error())
		return
	}
	q := url.Values{}
	if k != "" {
		q.Set("k", k)
	}
	s.forward(w, r, http.MethodPost, "/compare", q.Encode(), "application/octet-stream", data)
}

func (s *server) uploadError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, 413, fmt.Sprintf("file larger than %d bytes", s.maxUpload))
		return
	}
	writeError(w, 400, "malformed multipart body: "+err.Error())
}

// sniffSTL is a cheap structural check: a consistent binary STL (84-byte
// header, 50 bytes per announced triangle) or text starting with "solid".
func sniffSTL(data []byte) error {
	if len(data) == 0 {
		return errors.New("invalid STL: empty file")
	}
	if len(data) >= 84 {
		n := uint64(binary.LittleEndian.Uint32(data[80:84]))
		if n > 0 && uint64(len(data)) == 84+50*n {
			return nil
		}
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) >= 5 && bytes.EqualFold(t[:5], []byte("solid")) {
		return nil // the engine parses it fully
	}
	if len(data) < 84 {
		return fmt.Errorf("invalid STL: not ASCII STL (no leading \"solid\") and too short (%d bytes) for binary STL", len(data))
	}
	n := uint64(binary.LittleEndian.Uint32(data[80:84]))
	return fmt.Errorf("invalid STL: not ASCII STL (no leading \"solid\") and not a consistent binary STL: header announces %d triangles (%d bytes) but the file has %d bytes", n, 84+50*n, len(data))
}

// forward calls the engine and relays its answer.
func (s *server) forward(w http.ResponseWriter, r *http.Request, method, path, query, ctype string, body []byte) {
	u := s.engine.JoinPath(path)
	u.RawQuery = query
	req, err := http.NewRequestWithContext(r.Context(), method, u.String(), bytes.NewReader(body))
	if err != nil {
		writeError(w, 500, err.Error())
		return
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := s.client.Do(req)
	if err != nil {
		log.Printf("engine: %v", err)
		writeError(w, 502, "the engine is unavailable")
		return
	}
	defer res.Body.Close()
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Disposition", "Content-Length"} {
		if v := res.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if res.StatusCode >= 500 {
		log.Printf("engine: %s %s: %s", method, path, res.Status)
	}
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

func main() {
	engine := os.Getenv("ENGINE_URL")
	if engine == "" {
		engine = "http://engine:8080"
	}
	eu, err := url.Parse(engine)
	if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
		log.Fatalf("ENGINE_URL=%q: want http://host:port", engine)
	}
	maxUpload := int64(10 << 20)
	if v := os.Getenv("MAX_UPLOAD_BYTES"); v != "" {
		if maxUpload, err = strconv.ParseInt(v, 10, 64); err != nil || maxUpload <= 0 {
			log.Fatalf("MAX_UPLOAD_BYTES=%q: want a positive integer", v)
		}
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	s := &server{engine: eu, client: &http.Client{Timeout: 60 * time.Second}, maxUpload: maxUpload}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("api: listening on %s, engine at %s", srv.Addr, eu)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Print("api: stopped")
}
