package docker

import (
	"bytes"
	"io"
	"sync"
)

// lineWriter lets several streams write to one writer a whole line at a
// time, so that merged logs never interleave within a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) prefixed(prefix string) *prefixWriter {
	return &prefixWriter{l: l, prefix: []byte(prefix)}
}

type prefixWriter struct {
	l      *lineWriter
	prefix []byte
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if err := p.emit(p.buf[:i+1]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) emit(line []byte) error {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	if _, err := p.l.w.Write(p.prefix); err != nil {
		return err
	}
	_, err := p.l.w.Write(line)
	return err
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		_ = p.emit(append(p.buf, '\n'))
		p.buf = nil
	}
}
