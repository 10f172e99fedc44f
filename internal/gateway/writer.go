package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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
	// badBody is a client's body net/http could not read (a malformed
	// chunked encoding), nil if none.
	badBody error
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
	} else if malformedBody(err) {
		c.w.badBody = err
	}
	return n, err
}

// malformedBody tells a client's broken framing from its leaving: net/http
// reports a bad chunked encoding with errors of its own (unexported but
// for ErrLineTooLong), and a client gone or too slow as an unexpected EOF
// or a network error.
func malformedBody(err error) bool {
	var ne net.Error
	return err != nil && err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ne) &&
		!errors.Is(err, http.ErrBodyReadAfterClose) && !errors.Is(err, net.ErrClosed)
}

func (c *countingReader) Close() error { return c.w.body.Close() }

// accessEntry is one line of the access log. The fast path's request
// fields are slices of its read buffer, valid only during logAccess.
type accessEntry struct {
	solution           string
	client             netip.Addr
	method, proto      string
	host, uri          []byte
	status             int
	in, out            int64
	start              time.Time
	wake               time.Duration
	userAgent, referer []byte
}

// logAccess writes one structured line for a request to a solution,
// answered at now.
func (g *Gateway) logAccess(e *accessEntry, now time.Time) {
	if h, ok := g.cfg.AccessLog.Handler().(*accessHandler); ok {
		bp := lineBufs.Get().(*[]byte)
		*bp = appendAccess((*bp)[:0], now, e)
		h.buf.Write(*bp)
		lineBufs.Put(bp)
		return
	}
	attrs := accessAttrs(e, now)
	g.cfg.AccessLog.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs[:]...)
}

var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// accessAttrs are the fields of an access log line, in order, for any
// slog handler; appendAccess writes the same line faster.
func accessAttrs(e *accessEntry, now time.Time) [13]slog.Attr {
	return [...]slog.Attr{
		slog.String("solution", e.solution),
		slog.String("client", e.client.String()),
		slog.String("method", e.method),
		slog.String("host", string(e.host)),
		slog.String("uri", string(e.uri)),
		slog.String("proto", e.proto),
		slog.Int("status", e.status),
		slog.Int64("bytes_in", e.in),
		slog.Int64("bytes_out", e.out),
		slog.Float64("duration_ms", millis(now.Sub(e.start))),
		slog.Float64("wake_ms", millis(e.wake)),
		slog.String("user_agent", string(e.userAgent)),
		slog.String("referer", string(e.referer)),
	}
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
