//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// helmPath finds helm: on PATH, in Go's bin directory, or installed there
// from the module proxy.
func helmPath() string {
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
	}
	return filepath.Join(gobin, "helm")
}

func ensureHelm() (string, error) {
	p := helmPath()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	logf("installing helm from the Go module proxy")
	if _, err := sh(repo, []string{"GOFLAGS="}, "go", "install", "helm.sh/helm/v3/cmd/helm@latest"); err != nil {
		return "", err
	}
	return p, nil
}

// chartValues are the chart's values for this cluster: the images built
// here (never pulled), a short idle timeout, the node's addresses that
// solutions could otherwise reach, two gateway replicas, and plain HTTP.
func chartValues() ([]byte, error) {
	deny, err := publicNodeAddresses()
	if err != nil {
		return nil, err
	}
	repoTag := func(ref string) (string, string) {
		i := strings.LastIndex(ref, ":")
		return ref[:i], ref[i+1:]
	}
	r, t := repoTag(images["aim"])
	v := map[string]any{
		"image":  map[string]any{"repository": r, "tag": t, "pullPolicy": "Never"},
		"domain": domain,
		"tls":    map[string]any{"mode": "none"},
		"operator": map[string]any{
			"idleTimeout": idle.String(),
			"urlScheme":   "http",
			"egressDeny":  deny,
		},
		"gateway": map[string]any{
			"replicas": 2,
			// Reached from the host through its cluster IP (kube-proxy);
			// this cluster has no load balancer.
			"service":          map[string]any{"type": "ClusterIP"},
			"activityInterval": "1s",
			"wakeTimeout":      "90s",
			"drainDelay":       "3s",
		},
		// No StorageClass here: the API's tokens live as long as its pod.
		"api": map[string]any{"enabled": true, "persistence": map[string]any{"enabled": false}},
		// The in-cluster registry (its claim bound to registryVolume's
		// hostPath) at a NodePort the node pulls from, and builds.
		"registry": map[string]any{
			"enabled": true,
			"image":   map[string]any{"pullPolicy": "Never"},
			"service": map[string]any{"type": "NodePort", "nodePort": registryNodePort},
			"host":    registryHost,
			"storage": map[string]any{"size": "5Gi"},
		},
		// Both registries at NodePorts serve plain HTTP: logins to them
		// are tried over HTTP.
		"registries": map[string]any{"insecure": []string{registryHost, privateRegistryHost}},
		"builds": map[string]any{
			"enabled":         true,
			"mirrorDockerHub": true,
			"image":           map[string]any{"pullPolicy": "Never"},
			// Small, so that the limits' tests end soon.
			"resources":  map[string]any{"limits": map[string]any{"cpu": "1", "memory": buildMemory}},
			"timeout":    buildTimeout.String(),
			"maxContext": buildMaxContext,
		},
	}
	return yaml.Marshal(v)
}

// publicNodeAddresses are the nodes' IPv4 addresses outside the ranges
// the operator always keeps solutions from, as /32s: test/cluster's node
// has the host's, which may be anything (192.0.2.2 where the e2e runs),
// and an operator must be told those (docs/kubernetes.md).
func publicNodeAddresses() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing the nodes: %w", err)
	}
	cgnat := netip.MustParsePrefix("100.64.0.0/10")
	deny := []string{}
	for _, n := range l.Items {
		for _, a := range n.Status.Addresses {
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || !ip.Is4() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip) {
				continue
			}
			if p := netip.PrefixFrom(ip, 32).String(); !slices.Contains(deny, p) {
				deny = append(deny, p)
			}
		}
	}
	return deny, nil
}

// install installs the chart and finds the gateway, the API and a token.
func install() error {
	helm, err := ensureHelm()
	if err != nil {
		return err
	}
	vals, err := chartValues()
	if err != nil {
		return err
	}
	f := filepath.Join(os.TempDir(), "aim-e2e-kube-values.yaml")
	if err := os.WriteFile(f, vals, 0o600); err != nil {
		return err
	}
	logf("helm upgrade --install %s deploy/helm/aim -n %s with:\n%s", release, ns, vals)
	if _, err := sh(repo, nil, helm, "--kubeconfig", kubeconfig, "upgrade", "--install", release, "deploy/helm/aim",
		"-n", ns, "--create-namespace", "-f", f, "--wait", "--timeout", "5m"); err != nil {
		return err
	}
	// A kept cluster may hold the solutions of an earlier run.
	if _, err := kubectl("delete", "solutions", "--all", "-n", ns, "--wait", "--timeout=2m"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if gatewayURL, err = serviceURL(ctx, "gateway"); err != nil {
		return err
	}
	if apiURL, err = serviceURL(ctx, "api"); err != nil {
		return err
	}
	if token, err = adminToken(); err != nil {
		return err
	}
	// Ready pods are not yet reachable Services: the EndpointSlice and
	// kube-proxy's rules follow a moment later (until then a ClusterIP
	// refuses connections), and the first tests would fail on that.
	for _, u := range []string{gatewayURL + "/healthz", apiURL + "/healthz"} {
		if err := waitFor(time.Minute, 200*time.Millisecond, u+" answers 200", func() (bool, error) {
			resp, err := httpClient.Get(u)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, fmt.Errorf("%s", resp.Status)
		}); err != nil {
			return err
		}
	}
	logf("gateway at %s, API at %s", gatewayURL, apiURL)
	return nil
}

// serviceURL is http://<ClusterIP>:<port> of the release's Service of a
// component (app.kubernetes.io/component).
func serviceURL(ctx context.Context, component string) (string, error) {
	l, err := kc.CoreV1().Services(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=" + component})
	if err != nil {
		return "", err
	}
	if len(l.Items) != 1 || len(l.Items[0].Spec.Ports) == 0 || l.Items[0].Spec.ClusterIP == "" {
		return "", fmt.Errorf("want one Service labelled app.kubernetes.io/component=%s with a cluster IP and a port in %s, found %d", component, ns, len(l.Items))
	}
	s := l.Items[0]
	return fmt.Sprintf("http://%s:%d", s.Spec.ClusterIP, s.Spec.Ports[0].Port), nil
}
