// Package procnet reads which TCP ports a process listens on from the
// host's /proc, so that aim can tell a provider "nothing listens on 8080;
// the process listens on 5000" instead of only "not ready". It works when
// aim runs on the engine's host; elsewhere it reports nothing.
package procnet

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Listening returns the sorted TCP ports in LISTEN state in the network
// namespace of process pid.
func Listening(pid int) ([]int, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("no process")
	}
	seen := map[int]bool{}
	var firstErr error
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		ports, err := parse(fh)
		fh.Close()
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			seen[p] = true
		}
	}
	if len(seen) == 0 && firstErr != nil {
		return nil, firstErr
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out, nil
}

// listenState is TCP_LISTEN in the kernel's st column.
const listenState = "0A"

// dockerDNS is 127.0.0.11 as /proc writes it: the engine's embedded DNS
// server listens there inside every container on a user network, on a
// random port that is not the application's.
const dockerDNS = "0B00007F"

func parse(r io.Reader) ([]int, error) {
	var ports []int
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != listenState {
			continue
		}
		ipHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok || ipHex == dockerDNS {
			continue
		}
		p, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %w", f[1], err)
		}
		ports = append(ports, int(p))
	}
	return ports, sc.Err()
}

// Describe says what the ports mean for a component that should serve on
// want, e.g. "the process listens on 5000".
func Describe(ports []int, want int) string {
	if len(ports) == 0 {
		return "the process listens on no TCP port"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		if p == want {
			return fmt.Sprintf("the process listens on %d", want)
		}
		s[i] = strconv.Itoa(p)
	}
	return "the process listens on " + strings.Join(s, ", ")
}
