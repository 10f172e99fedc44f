package dockercheck

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
)

// TCP states as the kernel writes them in /proc/net/tcp.
const (
	stateSynSent = "02"
	stateListen  = "0A"
)

// socket is one line of /proc/<pid>/net/tcp{,6}.
type socket struct {
	Local, Remote netip.AddrPort
	State         string
}

// sockets reads the TCP sockets of process pid's network namespace from
// the host's /proc. They are the kernel's own record, so a connection
// attempt shows here (as SYN_SENT) even when the application logs nothing.
func sockets(pid int) ([]socket, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("no process")
	}
	var out []socket
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			return nil, err
		}
		ss, err := parseSockets(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("reading /proc/%d/net/%s: %w", pid, f, err)
		}
		out = append(out, ss...)
	}
	return out, nil
}

func parseSockets(r io.Reader) ([]socket, error) {
	var out []socket
	sc := bufio.NewScanner(r)
	for first := true; sc.Scan(); first = false {
		f := strings.Fields(sc.Text())
		if first || len(f) < 4 {
			continue
		}
		l, err := parseAddrPort(f[1])
		if err != nil {
			return nil, err
		}
		rem, err := parseAddrPort(f[2])
		if err != nil {
			return nil, err
		}
		out = append(out, socket{Local: l, Remote: rem, State: f[3]})
	}
	return out, sc.Err()
}

// parseAddrPort reads "0100007F:1F90" (IPv4) or the 32-digit IPv6 form:
// the address is written as 32-bit words in host (little-endian) order.
func parseAddrPort(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// dockerDNS is the engine's embedded resolver inside every container on a
// user network; it listens on a random port that is not the application's.
var dockerDNS = netip.MustParseAddr("127.0.0.11")

// listeners returns the listening addresses, sorted, without the engine's
// resolver: "0.0.0.0:5000", "127.0.0.1:8080", "[::]:8080".
func listeners(ss []socket) []netip.AddrPort {
	seen := map[netip.AddrPort]bool{}
	var out []netip.AddrPort
	for _, s := range ss {
		if s.State != stateListen || s.Local.Addr() == dockerDNS || seen[s.Local] {
			continue
		}
		seen[s.Local] = true
		out = append(out, s.Local)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Compare(out[j]) < 0 })
	return out
}

// describeListeners says where the process listens, for evidence.
func describeListeners(ls []netip.AddrPort) string {
	if len(ls) == 0 {
		return "the process listens on no TCP port"
	}
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return "the process listens on " + strings.Join(s, ", ")
}

// outgoing returns the remote addresses of connection attempts (SYN_SENT)
// that leave net (the check's own network): attempts to reach the internet.
func outgoing(ss []socket, net netip.Prefix) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		if s.State != stateSynSent {
			continue
		}
		a := s.Remote.Addr()
		if a.IsLoopback() || (net.IsValid() && net.Contains(a)) {
			continue
		}
		out = append(out, s.Remote)
	}
	return out
}

// hasDefaultRoute reports whether process pid's network namespace has an
// IPv4 default route. Without one a connection to the internet fails at
// once (ENETUNREACH) and leaves no SYN_SENT socket to observe.
func hasDefaultRoute(pid int) (bool, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/route", pid))
	if err != nil {
		return false, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i > 0 && len(f) > 7 && f[1] == "00000000" && f[7] == "00000000" {
			return true, nil
		}
	}
	return false, nil
}
