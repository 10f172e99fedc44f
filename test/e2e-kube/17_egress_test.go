//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

// The node's stand-ins, in a network namespace of their own behind a
// veth pair, so that a pod reaches them routed through the node as it
// would the internet or the cloud's metadata service. The names and
// TEST-NET-3 differ from test/e2e's TestEgress (TEST-NET-2), which may
// run on the same host.
const (
	standInNS   = "aimkegress"
	standInHost = "aimkeg0"
	standInPeer = "aimkeg1"
	// internetIP is TEST-NET-3: reserved for documentation but in no
	// private range, so the default egress lets it through.
	internetIP = "203.0.113.1"
	// metadataIP is the cloud's instance-metadata address.
	metadataIP = "169.254.169.254"
)

const egressYAML = `apiVersion: aim.dev/v1alpha1
kind: Solution
metadata:
  name: egress-open
  namespace: ` + ns + `
spec:
  components:
    - name: web
      image: %[1]s
      resources: {cpu: 100m, memory: 32Mi}
  scaling: {min: 1}
  limits: {rps: "10000", burst: 10000}
---
apiVersion: aim.dev/v1alpha1
kind: Solution
metadata:
  name: egress-sealed
  namespace: ` + ns + `
spec:
  egress: none
  components:
    - name: web
      image: %[1]s
      public: true
      resources: {cpu: 100m, memory: 32Mi}
    - name: engine
      image: %[1]s
      resources: {cpu: 100m, memory: 32Mi}
  scaling: {min: 1}
  limits: {rps: "10000", burst: 10000}
`

// TestEgress plays a hostile solution on Kubernetes that dials out from
// its own container (the test server's /dial, through the gateway), with
// the default egress and with egress: none. Both reach their siblings and
// the cluster's DNS, and neither reaches the metadata stand-in, the
// node's API server (at the node's address, and through the kubernetes
// Service), a pod of no solution (a gateway's), another solution's pod,
// or port 53 outside the cluster's DNS; the internet stand-in answers the
// default one only. A pod under no policy first reaches each target that
// must be refused (but another solution's, whose own ingress policy
// refuses it too), so that every refusal is the egress policy's.
func TestEgress(t *testing.T) {
	standIns(t)
	f := filepath.Join(t.TempDir(), "egress.yaml")
	if err := os.WriteFile(f, []byte(fmt.Sprintf(egressYAML, images["testserver"])), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl("apply", "-f", f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = kubectl("delete", "-f", f, "--wait=false") })
	waitState(t, "egress-open", v1alpha1.StateRunning, 2*time.Minute)
	waitState(t, "egress-sealed", v1alpha1.StateRunning, 2*time.Minute)

	ctx := context.Background()
	node := nodeIP(t)
	gws, err := gatewayPods(ctx)
	if err != nil || len(gws) == 0 || gws[0].Status.PodIP == "" {
		t.Fatalf("no gateway pod with an IP: %v", err)
	}
	apiSvc, err := kc.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	open, sealed := awake(t, "egress-open", "web"), awake(t, "egress-sealed", "engine")
	// control: a pod under no policy must reach it (HTTP; the API
	// server answers a plain request on its TLS port with a 400).
	type target struct {
		what, addr string
		control    bool
		open, shut bool // reached with the default egress, with none
	}
	targets := []target{
		{"the internet stand-in", net.JoinHostPort(internetIP, "8080"), true, true, false},
		{"port 53 of the internet stand-in", net.JoinHostPort(internetIP, "53"), true, true, false},
		{"the metadata stand-in", net.JoinHostPort(metadataIP, "8080"), true, false, false},
		{"the node's API server", net.JoinHostPort(node, "6443"), true, false, false},
		{"the API server's Service", net.JoinHostPort(apiSvc.Spec.ClusterIP, "443"), true, false, false},
		{"a gateway's pod", net.JoinHostPort(gws[0].Status.PodIP, "8080"), true, false, false},
		{"the cluster's DNS, by name", "kube-dns.kube-system.svc.cluster.local:53", false, true, true},
		{"another solution's pod", "", false, false, false},
	}
	t.Run("unconfined control", func(t *testing.T) {
		for _, c := range targets {
			if !c.control {
				continue
			}
			if ok, out := runProbe(t, "probe-egress-control", map[string]string{"app": "e2e-egress-control"}, "http://"+c.addr+"/"); !ok {
				t.Errorf("a pod under no policy cannot reach %s (%s), so a refusal below would prove nothing: %s", c.what, c.addr, out)
			}
		}
	})
	for _, sol := range []struct {
		name  string
		shut  bool
		other corev1.Pod
	}{{"egress-open", false, sealed}, {"egress-sealed", true, open}} {
		t.Run(sol.name, func(t *testing.T) {
			for _, c := range targets {
				addr := c.addr
				if addr == "" {
					addr = net.JoinHostPort(sol.other.Status.PodIP, "8080")
				}
				want := c.open
				if sol.shut {
					want = c.shut
				}
				got, body := dialFrom(t, sol.name, addr, want)
				t.Logf("%s dials %s (%s): %s", sol.name, c.what, addr, body)
				if got != want {
					t.Errorf("%s dials %s (%s): connected %v, want %v: %s", sol.name, c.what, addr, got, want, body)
				}
			}
		})
	}
	t.Run("egress-sealed reaches its sibling", func(t *testing.T) {
		if got, body := dialFrom(t, "egress-sealed", "engine:8080", true); !got {
			t.Errorf("web cannot reach engine: %s", body)
		}
	})
	t.Run("aim status", func(t *testing.T) {
		for sol, want := range map[string]string{"egress-open": "Egress:      default: ", "egress-sealed": "Egress:      none: "} {
			if out, err := aim("status", sol); err != nil || !strings.Contains(out, want) {
				t.Errorf("aim status %s does not say %q: %v\n%s", sol, want, err, out)
			}
		}
	})
}

// dialFrom has the solution's public container dial addr and says
// whether it connected. An answer it wants is asked for again for a
// while: the node's firewall for a pod may be written a moment late.
func dialFrom(t *testing.T, sol, addr string, want bool) (bool, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var code int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var err error
		code, body, _, err = get(ctx, sol, "/dial?addr="+addr)
		if err != nil {
			t.Fatalf("asking %s to dial %s: %v", sol, addr, err)
		}
		if code != http.StatusOK && code != http.StatusBadGateway {
			t.Fatalf("asking %s to dial %s: %d %s", sol, addr, code, body)
		}
		if (code == http.StatusOK) == want || time.Now().After(deadline) {
			break
		}
	}
	return code == http.StatusOK, strings.TrimSpace(body)
}

// nodeIP is the node's InternalIP, where its API server listens.
func nodeIP(t *testing.T) string {
	t.Helper()
	l, err := kc.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("nodes: %d, %v", len(l.Items), err)
	}
	for _, a := range l.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	t.Fatalf("node %s has no InternalIP", l.Items[0].Name)
	return ""
}

// standIns serves the test server on 8080 and 53 at the internet
// stand-in and the metadata stand-in, from the stand-ins' namespace; all
// of it is removed when the test ends.
func standIns(t *testing.T) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "testserver")
	if _, err := sh(repo, []string{"CGO_ENABLED=0"}, "go", "build", "-o", bin, "./test/testserver"); err != nil {
		t.Fatal(err)
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// A namespace left by an interrupted run goes first (its veth with it).
	_ = exec.Command("ip", "netns", "del", standInNS).Run()
	_ = exec.Command("ip", "route", "del", metadataIP+"/32", "dev", standInHost).Run()
	ip("netns", "add", standInNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", standInNS).Run() })
	ip("link", "add", standInHost, "type", "veth", "peer", "name", standInPeer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", standInHost).Run() })
	ip("link", "set", standInPeer, "netns", standInNS)
	ip("addr", "add", "203.0.113.254/24", "dev", standInHost)
	ip("link", "set", standInHost, "up")
	ip("route", "add", metadataIP+"/32", "via", internetIP, "dev", standInHost)
	ip("-n", standInNS, "addr", "add", internetIP+"/24", "dev", standInPeer)
	ip("-n", standInNS, "addr", "add", metadataIP+"/32", "dev", standInPeer)
	ip("-n", standInNS, "link", "set", standInPeer, "up")
	ip("-n", standInNS, "link", "set", "lo", "up")
	ip("-n", standInNS, "route", "add", "default", "via", "203.0.113.254")
	for _, port := range []string{"8080", "53"} {
		srv := exec.Command("ip", "netns", "exec", standInNS, bin)
		srv.Env = append(os.Environ(), "TESTSERVER_PORT="+port)
		var logs strings.Builder
		srv.Stdout, srv.Stderr = &logs, &logs
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
		for _, host := range []string{internetIP, metadataIP} {
			addr := net.JoinHostPort(host, port)
			if err := waitFor(10*time.Second, 100*time.Millisecond, "the stand-in at "+addr, func() (bool, error) {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					c.Close()
				}
				return err == nil, err
			}); err != nil {
				t.Fatalf("%v\n%s", err, logs.String())
			}
		}
	}
}
