package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// writer records what a solution's answer was, for the metrics and the
// access log: its status and the bytes both ways. It is pooled, as are
// the readers it wraps the request body in, so that counting costs a
// request no allocation.
type writer struct {
	http.ResponseWriter
	status  int
	in, out int64
	body    io.ReadCloser
	reader  countingReader
	// tooBig is the body limit the client went past, 0 if none.
	tooBig int64
}

var writers = sync.Pool{New: func() any { w := &writer{}; w.reader.w = w; return w }}

func getWriter(w http.ResponseWriter) *writer {
	rw := writers.Get().(*writer)
	rw.ResponseWriter = w
	return rw
}

func putWriter(rw *writer) {
	*rw = writer{reader: countingReader{w: rw}}
	writers.Put(rw)
}

func (w *writer) WriteHeader(code int) {
	if w.status == 0 && code >= 200 || code == http.StatusSwitchingProtocols {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *writer) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.out += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection, for flushes,
// hijacks and deadlines.
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *writer) bodyReader() io.ReadCloser { return &w.reader }

type countingReader struct{ w *writer }

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.w.body.Read(p)
	c.w.in += int64(n)
	var tooBig *http.MaxBytesError
	if err != nil && errors.As(err, &tooBig) {
		c.w.tooBig = tooBig.Limit
	}
	return n, err
}

func (c *countingReader) Close() error { return c.w.body.Close() }

// accessEntry is one line of the access log.
type accessEntry struct {
	solution           string
	client             netip.Addr
	method, host, uri  string
	proto              string
	status             int
	in, out            int64
	start              time.Time
	wake               time.Duration
	userAgent, referer string
}

// logAccess writes one structured line for a request to a solution.
func (g *Gateway) logAccess(e accessEntry) {
	attrs := [...]slog.Attr{
		slog.String("solution", e.solution),
		slog.String("client", e.client.String()),
		slog.String("method", e.method),
		slog.String("host", e.host),
		slog.String("uri", e.uri),
		slog.String("proto", e.proto),
		slog.Int("status", e.status),
		slog.Int64("bytes_in", e.in),
		slog.Int64("bytes_out", e.out),
		slog.Float64("duration_ms", float64(time.Since(e.start).Microseconds())/1000),
		slog.Float64("wake_ms", float64(e.wake.Microseconds())/1000),
		slog.String("user_agent", e.userAgent),
		slog.String("referer", e.referer),
	}
	g.cfg.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:]...)
}
