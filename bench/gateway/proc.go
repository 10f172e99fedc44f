package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procCPU is the CPU time, user and system, that process pid and its
// descendants (nginx's workers) have used, from /proc/<pid>/stat, in clock
// ticks of 1/100 s (Linux's USER_HZ). A worker that exited during the
// window would be missed; none does during a run.
func procCPU(pid int) (time.Duration, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone since the glob
		}
		id, st, err := parseStat(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		procs[id] = proc{st.ppid, st.ticks}
	}
	if _, ok := procs[pid]; !ok {
		return 0, fmt.Errorf("process %d is not running", pid)
	}
	var total int64
	for id, p := range procs {
		for up := id; up > 1; up = procs[up].ppid {
			if up == pid {
				total += p.ticks
				break
			}
		}
	}
	return time.Duration(total) * 10 * time.Millisecond, nil
}

type stat struct {
	ppid  int
	ticks int64 // utime + stime
}

// parseStat reads the pid, ppid, utime and stime of a /proc/<pid>/stat
// line.
func parseStat(s string) (int, stat, error) {
	// The command name may hold spaces and parentheses; the fields after
	// its last ")" don't.
	i := strings.LastIndex(s, ") ")
	pidStr, _, _ := strings.Cut(s, " ")
	pid, err := strconv.Atoi(pidStr)
	if i < 0 || err != nil {
		return 0, stat{}, fmt.Errorf("not a stat line: %q", s)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, stat{}, fmt.Errorf("not a stat line: %q", s)
	}
	ppid, err1 := strconv.Atoi(f[1])
	utime, err2 := strconv.ParseInt(f[11], 10, 64)
	stime, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, stat{}, fmt.Errorf("not a stat line: %q", s)
	}
	return pid, stat{ppid: ppid, ticks: utime + stime}, nil
}
