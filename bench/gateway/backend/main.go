// Command backend is the solution both proxies front in bench/gateway: it
// answers GET / with a fixed HTML page of BODY_BYTES bytes (512 unless
// set), GET /big with 1 MiB (Content-Length) and GET /stream with 64 KiB
// in 16 flushed chunks (chunked, as a model's output streams), with
// keep-alive, and does nothing else per request, so that the proxies'
// costs are what the benchmark sees.
package main

import (
	"bytes"
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

func main() {
	size := 512
	if s := os.Getenv("BODY_BYTES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 64 {
			log.Fatalf("BODY_BYTES=%q: want a number of bytes, at least 64", s)
		}
		size = n
	}
	body := page(size)
	length := strconv.Itoa(len(body))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		h["Content-Length"] = []string{length}
		_, _ = w.Write(body)
	})
	big := page(1 << 20)
	bigLength := strconv.Itoa(len(big))
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		h["Content-Length"] = []string{bigLength}
		_, _ = w.Write(big)
	})
	// No pause between chunks: a pause would measure the backend's
	// clock, not the proxies.
	chunk := bytes.Repeat([]byte("y"), 4<<10)
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain; charset=utf-8"}
		rc := http.NewResponseController(w)
		for range 16 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// page is a valid HTML document of exactly n bytes.
func page(n int) []byte {
	head := []byte("<!doctype html><title>bench</title><p>")
	tail := []byte("</p>\n")
	fill := n - len(head) - len(tail)
	if fill < 0 {
		fill = 0
	}
	return append(append(head, bytes.Repeat([]byte("x"), fill)...), tail...)
}
