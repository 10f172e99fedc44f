package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memCgroup is a transient memory cgroup a test runs aim serve in, to
// prove it stays within a memory limit: cgroup v2 where the memory
// controller is there (a group under the root, since a v2 group with
// processes cannot have children with controllers), else cgroup v1's
// memory hierarchy (a child of the test's own group, so that whatever
// limit the test runs under still holds).
type memCgroup struct {
	Dir string
	v2  bool
}

// newMemCgroup makes the group with limit bytes of memory and no swap; it
// is removed when the test ends, once its processes are gone.
func newMemCgroup(t *testing.T, limit int64) *memCgroup {
	t.Helper()
	name := fmt.Sprintf("aim-e2e-%s-%d", strings.ToLower(t.Name()), os.Getpid())
	var cg *memCgroup
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "memory") {
		cg = &memCgroup{Dir: filepath.Join("/sys/fs/cgroup", name), v2: true}
		// The root's children get the memory controller (systemd enables
		// it already; elsewhere it may not be).
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0o644)
	} else {
		own, err := ownCgroupV1("memory")
		if err != nil {
			t.Fatalf("no cgroup v2 memory controller and no v1 memory hierarchy: %v", err)
		}
		cg = &memCgroup{Dir: filepath.Join("/sys/fs/cgroup/memory", own, name)}
	}
	if err := os.Mkdir(cg.Dir, 0o755); err != nil {
		t.Fatalf("making the memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The group can go once the processes in it are gone.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if err := os.Remove(cg.Dir); err == nil || time.Now().After(deadline) {
				if err != nil {
					t.Errorf("removing the cgroup %s: %v", cg.Dir, err)
				}
				return
			}
		}
	})
	files := map[string]string{"memory.max": fmt.Sprint(limit), "memory.swap.max": "0"}
	if !cg.v2 {
		files = map[string]string{"memory.limit_in_bytes": fmt.Sprint(limit), "memory.memsw.limit_in_bytes": fmt.Sprint(limit)}
	}
	for _, f := range []string{"memory.max", "memory.limit_in_bytes", "memory.swap.max", "memory.memsw.limit_in_bytes"} {
		v, ok := files[f]
		if !ok {
			continue
		}
		err := os.WriteFile(filepath.Join(cg.Dir, f), []byte(v), 0o644)
		// Swap accounting may be off (no memsw files); the limit itself
		// must hold.
		if err != nil && (f == "memory.max" || f == "memory.limit_in_bytes") {
			t.Fatalf("setting the cgroup's memory limit: %v", err)
		}
	}
	return cg
}

// ownCgroupV1 is the path of this process's group in a v1 hierarchy.
func ownCgroupV1(controller string) (string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ","+controller+",") {
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", controller, parts[2])); err != nil {
				return "", err
			}
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("/proc/self/cgroup names no %s hierarchy", controller)
}

// OOMKills is how many processes of the group the kernel's OOM killer
// killed.
func (cg *memCgroup) OOMKills(t *testing.T) int64 {
	t.Helper()
	file := "memory.events"
	if !cg.v2 {
		file = "memory.oom_control"
	}
	b, err := os.ReadFile(filepath.Join(cg.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", file, line)
			}
			return n
		}
	}
	t.Fatalf("%s has no oom_kill counter:\n%s", file, b)
	return 0
}

// Peak is the most memory the group used at once, in bytes.
func (cg *memCgroup) Peak(t *testing.T) int64 {
	t.Helper()
	return cg.read(t, "memory.peak", "memory.max_usage_in_bytes")
}

// Current is the memory the group uses now, in bytes.
func (cg *memCgroup) Current(t *testing.T) int64 {
	t.Helper()
	return cg.read(t, "memory.current", "memory.usage_in_bytes")
}

// read reads a number from the group's file v2 or v1.
func (cg *memCgroup) read(t *testing.T, v2, v1 string) int64 {
	t.Helper()
	file := v2
	if !cg.v2 {
		file = v1
	}
	b, err := os.ReadFile(filepath.Join(cg.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", file, b)
	}
	return n
}
