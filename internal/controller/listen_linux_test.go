package controller

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// listenEnv asks the test binary to be a process that listens on the
// ports it names (comma-separated) and nothing else, until its stdin
// closes.
const listenEnv = "AIM_CONTROLLER_TEST_LISTEN"

func TestMain(m *testing.M) {
	if ports, ok := os.LookupEnv(listenEnv); ok {
		os.Exit(listenOnly(ports))
	}
	os.Exit(m.Run())
}

func listenOnly(ports string) int {
	for _, p := range strings.Split(ports, ",") {
		if _, err := net.Listen("tcp", ":"+p); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	fmt.Println("listening")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// listener starts a process that listens on ports in a network namespace
// of its own, so that what /proc says it listens on is exactly ports,
// whatever else listens on this host; it returns the process's pid, which
// a fake replica reports as its main process.
func listener(t *testing.T, ports ...int) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), listenEnv+"="+strings.Join(s, ","))
	// A user namespace lets an unprivileged user create the network one.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a process in a network namespace of its own (this test needs Linux user and network namespaces): %v", err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "listening" {
		t.Fatalf("the listening process said %q (%v)", line, err)
	}
	return cmd.Process.Pid
}
