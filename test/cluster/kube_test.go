//go:build cluster

package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// kubectl runs kubectl against the cluster and returns its standard output;
// a failure is an error carrying kubectl's standard error.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfigPath}, args...)...)
	if kubectlBin != "" {
		cmd.Path = kubectlBin
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

func mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := kubectl(ctx, stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// apiClient speaks to the apiserver directly, with the admin kubeconfig's
// certificates. The timings go through it rather than kubectl, so that
// they measure the cluster and not the start of a kubectl process.
type apiClient struct {
	server string
	http   *http.Client
}

func newAPIClient(path string) (*apiClient, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	var cfg struct {
		Clusters []struct {
			Cluster struct {
				Server string `yaml:"server"`
				CA     string `yaml:"certificate-authority-data"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User struct {
				Cert string `yaml:"client-certificate-data"`
				Key  string `yaml:"client-key-data"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if len(cfg.Clusters) != 1 || len(cfg.Users) != 1 {
		return nil, fmt.Errorf("%s: want one cluster and one user, as up.sh writes", path)
	}
	decode := func(s string) []byte {
		b, derr := base64.StdEncoding.DecodeString(s)
		if derr != nil && err == nil {
			err = fmt.Errorf("%s: bad base64: %w", path, derr)
		}
		return b
	}
	ca, cert, key := decode(cfg.Clusters[0].Cluster.CA), decode(cfg.Users[0].User.Cert), decode(cfg.Users[0].User.Key)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no CA certificate", path)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("%s: client certificate: %w", path, err)
	}
	return &apiClient{
		server: cfg.Clusters[0].Cluster.Server,
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}},
		}},
	}, nil
}

func (c *apiClient) do(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return resp, nil
}

// scale sets a Deployment's replicas through its scale subresource, as a
// Kubernetes runtime for aim would.
func (c *apiClient) scale(ctx context.Context, ns, deploy string, replicas int) error {
	body := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
	resp, err := c.do(ctx, http.MethodPatch,
		fmt.Sprintf("/apis/apps/v1/namespaces/%s/deployments/%s/scale", ns, deploy),
		"application/merge-patch+json", []byte(body))
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

type pod struct {
	Metadata struct {
		Name              string  `json:"name"`
		DeletionTimestamp *string `json:"deletionTimestamp"`
	} `json:"metadata"`
	Status struct {
		PodIP string `json:"podIP"`
	} `json:"status"`
}

// podWatch streams the IP of every pod matching a selector as soon as it
// has one. When ips is closed, err says why the watch ended.
type podWatch struct {
	ips chan string
	err error
}

// watchPodIPs starts a podWatch in ns, until ctx ends. It returns once the
// watch is established, so that nothing that happens afterwards is missed.
//
// It lists first (resourceVersion=0: from the apiserver's cache) and
// watches from the list's version, as client-go's informers do. A watch
// without a version must wait for the cache to catch up with etcd, which
// etcd 3.4 helps with only every --experimental-watch-progress-notify-interval.
func (c *apiClient) watchPodIPs(ctx context.Context, ns, selector string) (*podWatch, error) {
	list, err := c.listPods(ctx, ns, selector)
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/api/v1/namespaces/%s/pods?watch=1&labelSelector=%s&resourceVersion=%s&allowWatchBookmarks=false",
		ns, url.QueryEscape(selector), list.Metadata.ResourceVersion)
	resp, err := c.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return nil, err
	}
	w := &podWatch{ips: make(chan string, 16)}
	go func() {
		defer resp.Body.Close()
		defer close(w.ips)
		dec := json.NewDecoder(resp.Body)
		for {
			var ev struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			if err := dec.Decode(&ev); err != nil {
				w.err = fmt.Errorf("watching pods %s in %s: %w", selector, ns, err)
				return
			}
			if ev.Type == "ERROR" {
				w.err = fmt.Errorf("watching pods %s in %s: %s", selector, ns, ev.Object)
				return
			}
			var p pod
			if err := json.Unmarshal(ev.Object, &p); err != nil {
				w.err = fmt.Errorf("watching pods %s in %s: decoding a pod: %w", selector, ns, err)
				return
			}
			if ev.Type == "DELETED" || p.Metadata.DeletionTimestamp != nil || p.Status.PodIP == "" {
				continue
			}
			select {
			case w.ips <- p.Status.PodIP:
			case <-ctx.Done():
				return
			}
		}
	}()
	return w, nil
}

type podList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []pod `json:"items"`
}

// listPods lists the pods matching selector in ns, terminating ones
// included, from the apiserver's cache.
func (c *apiClient) listPods(ctx context.Context, ns, selector string) (*podList, error) {
	resp, err := c.do(ctx, http.MethodGet,
		fmt.Sprintf("/api/v1/namespaces/%s/pods?resourceVersion=0&labelSelector=%s", ns, url.QueryEscape(selector)), "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list podList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("decoding the pod list of %s: %w", ns, err)
	}
	return &list, nil
}
