package gateway

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
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
	return slog.New(slog.NewJSONHandler(b, nil)), func() error {
		err := b.Close()
		if f != nil {
			err = errors.Join(err, f.Close())
		}
		return err
	}, nil
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
