// Command engine is the private component of the part-comparer example: it
// holds a collection of parts with precomputed shape descriptors and ranks
// them by similarity to an uploaded STL mesh.
//
// Endpoints (reached by siblings at http://engine:8080, never public):
//
//	GET  /healthz                  readiness
//	GET  /parts                    the collection
//	GET  /parts/{id}/preview.png   isometric preview
//	GET  /parts/{id}/model.stl     the part's mesh (binary STL)
//	POST /compare?k=10             body: STL file (ASCII or binary)
//
// Configuration (environment): PORT (8080), PARTS_DIR (directory of *.stl
// files plus an optional parts.json with names; empty = generate the demo
// collection in memory), MAX_UPLOAD_BYTES (10 MiB), MAX_TRIANGLES (500000).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func envInt(name string, def int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			log.Fatalf("%s=%q: want a positive integer", name, v)
		}
		return n
	}
	return def
}

func main() {
	start := time.Now()
	cfg := config{
		MaxUpload:    envInt("MAX_UPLOAD_BYTES", 10<<20),
		MaxTriangles: int(envInt("MAX_TRIANGLES", 500_000)),
	}
	coll, err := loadCollection(os.Getenv("PARTS_DIR"))
	if err != nil {
		log.Fatalf("loading the collection: %v", err)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           newServer(coll, cfg),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Printf("engine: %d parts ready in %v, listening on %s", len(coll.parts), time.Since(start).Round(time.Millisecond), srv.Addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	log.Print("engine: stopped")
}
