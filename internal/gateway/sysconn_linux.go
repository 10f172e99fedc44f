package gateway

import (
	"syscall"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) without the scheduler's
// system-call bookkeeping, for non-blocking sockets only (see sysConn).

func sysRead(fd int, p []byte) (int, error)  { return rawIO(syscall.SYS_READ, fd, p) }
func sysWrite(fd int, p []byte) (int, error) { return rawIO(syscall.SYS_WRITE, fd, p) }

func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		default:
			return 0, e
		}
	}
}
