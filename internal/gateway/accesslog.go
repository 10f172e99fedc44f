package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Access log lines are written in batches, as nginx's access_log does with
// buffer= and flush=: a system call per line (and its lock) cost the
// gateway about a tenth of its rate under load. A line waits at most
// accessLogFlush, or until the buffer fills, and Close writes what is left.
const (
	accessLogBuffer = 64 << 10
	accessLogFlush  = time.Second
)

// OpenAccessLog opens the destination of --access-log: "" (none, a nil
// logger), "stdout", "stderr" or, with files allowed, a file appended to.
// close flushes and, for a file, closes it.
func OpenAccessLog(dest string, files bool) (log *slog.Logger, close func() error, err error) {
	var w io.Writer
	var f *os.File
	switch dest {
	case "":
		return nil, func() error { return nil }, nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		if !files {
			return nil, nil, fmt.Errorf("--access-log %q: use stdout, stderr or nothing here", dest)
		}
		if f, err = os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640); err != nil {
			return nil, nil, fmt.Errorf("opening the access log: %w", err)
		}
		w = f
	}
	b := newLogBuffer(w, accessLogBuffer, accessLogFlush)
	h := &accessHandler{JSONHandler: slog.NewJSONHandler(b, nil), buf: b}
	return slog.New(h), func() error {
		err := b.Close()
		if f != nil {
			err = errors.Join(err, f.Close())
		}
		return err
	}, nil
}

// accessHandler is the handler of OpenAccessLog's logger: slog's JSON
// handler on the batching buffer, whose lines the gateway's own requests
// write directly (appendAccess), the same bytes at a fraction of the cost.
type accessHandler struct {
	*slog.JSONHandler
	buf *logBuffer
}

// appendAccess appends the line slog's JSON handler writes for
// accessAttrs(e, now) at time now. slog's handler took about 1.9µs a line
// (attributes boxed in a Record, a generic encoder, floats through
// encoding/json), a tenth of what the gateway spends on a request;
// TestAppendAccessMatchesSlog holds the two to the same bytes.
func appendAccess(b []byte, now time.Time, e *accessEntry) []byte {
	b = append(b, `{"time":"`...)
	b = now.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"request","solution":`...)
	b = appendJSONString(b, e.solution)
	b = append(b, `,"client":"`...)
	if e.client.IsValid() {
		b = e.client.AppendTo(b)
	} else {
		b = append(b, "invalid IP"...)
	}
	b = append(b, `","method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, e.host)
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, e.uri)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, e.proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, e.in, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, e.out, 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, millis(now.Sub(e.start)))
	b = append(b, `,"wake_ms":`...)
	b = appendJSONFloat(b, millis(e.wake))
	b = append(b, `,"user_agent":`...)
	b = appendJSONString(b, e.userAgent)
	b = append(b, `,"referer":`...)
	b = appendJSONString(b, e.referer)
	return append(b, "}\n"...)
}

// appendJSONString quotes s as slog's JSON handler does: escapes for '"',
// '\\' and control characters, U+FFFD for invalid UTF-8, and U+2028 and
// U+2029 escaped.
func appendJSONString[S []byte | string](b []byte, s S) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does, which is what slog's
// JSON handler uses for floats.
func appendJSONFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 is written 1e-7.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// logBuffer batches writes of whole lines to w.
type logBuffer struct {
	mu     sync.Mutex
	w      *bufio.Writer
	err    error // the first write error, reported once
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

func newLogBuffer(w io.Writer, size int, every time.Duration) *logBuffer {
	b := &logBuffer{w: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(every)
	return b
}

// Write takes one log line, as slog's handlers write them. A line never
// straddles two writes to w: the buffer is flushed first if it would not
// fit.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, os.ErrClosed
	}
	if len(p) > b.w.Available() && b.w.Buffered() > 0 {
		b.flushLocked()
	}
	return b.w.Write(p)
}

func (b *logBuffer) flushLocked() {
	if err := b.w.Flush(); err != nil && b.err == nil {
		b.err = err
		slog.Error("writing the access log", "err", err)
	}
}

func (b *logBuffer) flushEvery(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.mu.Lock()
			if b.w.Buffered() > 0 {
				b.flushLocked()
			}
			b.mu.Unlock()
		}
	}
}

// Close writes what is buffered; later writes fail.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.flushLocked()
	err := b.err
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return err
}
