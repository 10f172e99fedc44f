package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// sysConn reads and writes a socket with system calls made inside its
// RawConn's callbacks, which on Linux are raw ones (sysRead, sysWrite).
//
// Why: a Go read or write on a socket enters the scheduler's system-call
// state, and the runtime's monitor thread takes the processor away from a
// call that lasts more than 20µs while other goroutines wait, waking or
// starting another thread to run them. A gateway under load makes
// hundreds of thousands of socket calls a second on a busy machine, where
// the kernel's loopback work and preemption make a few of them last that
// long: profiles put the hand-offs, the extra threads' sleeps and wakes,
// and the monitor kept polling every 20µs at about a sixth of the
// gateway's CPU, against nginx's epoll_wait. A non-blocking socket call
// never blocks, so it need not give its processor away.
type sysConn struct {
	rc              syscall.RawConn
	readFn, writeFn func(fd uintptr) bool
	p               []byte
	n               int
	err             error
	// stalled, when set, is called when a read reaches the read
	// deadline: nil lets the read wait on (stalled moved the deadline),
	// an error ends it.
	stalled func() error
}

// newSysConn returns nil for a connection without a RawConn.
func newSysConn(c net.Conn) *sysConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &sysConn{rc: rc}
	s.readFn, s.writeFn = s.readStep, s.writeStep
	return s
}

func (s *sysConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		s.p, s.n, s.err = p, 0, nil
		err := s.rc.Read(s.readFn)
		s.p = nil
		if err == nil {
			return s.n, s.err
		}
		if s.stalled == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, err // the connection closed, or a deadline nobody watches
		}
		if err := s.stalled(); err != nil {
			return 0, err
		}
	}
}

func (s *sysConn) readStep(fd uintptr) bool {
	n, err := sysRead(int(fd), s.p)
	if err == syscall.EAGAIN {
		return false
	}
	s.n, s.err = n, err
	if err == nil && n == 0 {
		s.err = io.EOF
	}
	return true
}

func (s *sysConn) Write(p []byte) (int, error) {
	s.p, s.n, s.err = p, 0, nil
	err := s.rc.Write(s.writeFn)
	n := s.n
	s.p = nil
	if err == nil {
		err = s.err
	}
	return n, err
}

func (s *sysConn) writeStep(fd uintptr) bool {
	for s.n < len(s.p) {
		n, err := sysWrite(int(fd), s.p[s.n:])
		if err == syscall.EAGAIN {
			return false
		}
		if err != nil {
			s.err = err
			return true
		}
		s.n += n
	}
	return true
}

// peek looks at a socket without reading it or waiting: n > 0 for bytes
// waiting, 0 with no error for the peer's end, EAGAIN for nothing yet.
func peek(fd int) (int, error) {
	var b [1]byte
	n, _, err := syscall.Recvfrom(fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n, err
}
