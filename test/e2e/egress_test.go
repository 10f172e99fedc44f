package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
)

// publicStandIn is where the tests' "internet" is: TEST-NET-2 is reserved
// for documentation but in no private range, so aim treats it as public.
// It lives in a network namespace of its own behind a veth pair, so that
// reaching it is routed through the host (FORWARD) as the internet would
// be, rather than delivered to one of the host's own addresses.
const publicStandIn = "198.51.100.1"

// serveEnv makes the test binary a plain HTTP server at its address.
const serveEnv = "AIM_E2E_SERVE"

// runCmd runs ip (or another command) and fails the test if it fails.
func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// listenPublic serves HTTP at publicStandIn:8080 from a namespace; all
// of it is removed when the test ends.
func listenPublic(t *testing.T) string {
	t.Helper()
	const ns, host, peer = "aimegress", "aimeg0", "aimeg1"
	runCmd(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	runCmd(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	runCmd(t, "ip", "link", "set", peer, "netns", ns)
	runCmd(t, "ip", "addr", "add", "198.51.100.254/24", "dev", host)
	runCmd(t, "ip", "link", "set", host, "up")
	runCmd(t, "ip", "-n", ns, "addr", "add", publicStandIn+"/24", "dev", peer)
	runCmd(t, "ip", "-n", ns, "link", "set", peer, "up")
	runCmd(t, "ip", "-n", ns, "link", "set", "lo", "up")
	runCmd(t, "ip", "-n", ns, "route", "add", "default", "via", "198.51.100.254")
	srv := exec.Command("ip", "netns", "exec", ns, os.Args[0])
	srv.Env = append(os.Environ(), serveEnv+"="+publicStandIn+":8080")
	var logs strings.Builder
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := publicStandIn + ":8080"
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the public stand-in does not answer at %s:\n%s", addr, logs.String())
		}
	}
}

// listenOn accepts connections at addr until the test ends.
func listenOn(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// listenMetadata stands in for the cloud's instance-metadata address: an
// alias of the host's loopback, with a listener on it.
func listenMetadata(t *testing.T) string {
	t.Helper()
	runCmd(t, "ip", "addr", "add", "169.254.169.254/32", "dev", "lo")
	t.Cleanup(func() { _ = exec.Command("ip", "addr", "del", "169.254.169.254/32", "dev", "lo").Run() })
	return listenOn(t, "169.254.169.254:0")
}

const sealedSolution = `name: sealed
egress: none
components:
  - name: web
    image: ` + TestImage + `
    public: true
  - name: engine
    image: ` + TestImage + `
`

// TestEgress plays a hostile solution that dials out, with the default
// egress and with egress: none: the host's own listener (on all
// addresses, reached through the bridge's gateway), the metadata stand-in
// and another solution's container (a private address) are refused to
// both; the public stand-in answers the default one only; siblings, the
// gateway and a bystander keep working.
func TestEgress(t *testing.T) {
	public := listenPublic(t)
	metadata := listenMetadata(t)
	hostPort := strings.Split(listenOn(t, "0.0.0.0:0"), ":")[1]
	a := StartAim(t)
	a.MustCLI("deploy", "-q", writeSolution(t, sealedSolution, nil))
	a.MustCLI("deploy", "-q", "--name", "open", "--image", TestImage)
	a.MustCLI("deploy", "-q", "--name", "bystander", "--image", TestImage)

	ctx := context.Background()
	ipOf := func(sol string) (ip, gateway string) {
		cs := a.Containers(sol)
		if len(cs) == 0 {
			t.Fatalf("%s has no containers", sol)
		}
		info, err := docker.ContainerInspect(ctx, cs[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range info.NetworkSettings.Networks {
			return ep.IPAddress, ep.Gateway
		}
		t.Fatalf("%s is on no network", sol)
		return "", ""
	}
	bystander, _ := ipOf("bystander")
	for _, sol := range []string{"open", "sealed"} {
		_, gw := ipOf(sol)
		for _, c := range []struct{ what, addr string }{
			{"the host's listener", net.JoinHostPort(gw, hostPort)},
			{"the metadata stand-in", metadata},
			{"another solution's container", net.JoinHostPort(bystander, "8080")},
		} {
			if code, body := a.Get(sol, "/dial?addr="+c.addr); code == 200 {
				t.Errorf("%s reached %s (%s): %s", sol, c.what, c.addr, body)
			}
		}
	}
	if code, body := a.Get("open", "/dial?addr="+public); code != 200 {
		t.Errorf("a default solution cannot reach the public stand-in %s: %d %s", public, code, body)
	}
	if code, body := a.Get("sealed", "/dial?addr="+public); code == 200 {
		t.Errorf("egress: none reached the public stand-in %s: %s", public, body)
	}
	if code, body := a.Get("sealed", "/dial?addr=engine:8080"); code != 200 {
		t.Errorf("sealed web cannot reach its sibling: %d %s", code, body)
	}
	if code, body := a.Get("bystander", "/whoami"); code != 200 {
		t.Errorf("the bystander stopped answering: %d %s", code, body)
	}
	for sol, want := range map[string]string{"open": "Egress:      default: ", "sealed": "Egress:      none: "} {
		if st := a.MustCLI("status", sol); !strings.Contains(st, want) {
			t.Errorf("aim status %s does not say %q:\n%s", sol, want, st)
		}
	}
	for _, n := range a.Networks() {
		info, err := docker.NetworkInspect(ctx, n.ID, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := info.Labels["dev.aim.solution"] == "sealed"; info.Internal != want {
			t.Errorf("network %s: internal %v, want %v", n.Name, info.Internal, want)
		}
	}
	checkRulesGo(t, a)
}

// checkRulesGo removes the solutions and checks that their bridges'
// rules went with them.
func checkRulesGo(t *testing.T, a *Aim) {
	t.Helper()
	var bridges []string
	for _, n := range a.Networks() {
		bridges = append(bridges, "br-"+n.ID[:12])
	}
	for _, sol := range []string{"open", "sealed", "bystander"} {
		a.MustCLI("rm", sol)
	}
	out, err := exec.Command("iptables", "-S").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S: %v\n%s", err, out)
	}
	for _, b := range bridges {
		if strings.Contains(string(out), b) {
			t.Errorf("rules for %s stayed after its solution was removed:\n%s", b, grepLines(string(out), b))
		}
	}
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			fmt.Fprintln(&b, l)
		}
	}
	return b.String()
}
