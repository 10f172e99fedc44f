//go:build kube

package e2ekube

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// credProbe is a build step that looks for every registry credential it
// can read (its environment, files, every process's /proc environ and
// cmdline, Docker configs in every process's root, 64-hex tokens in any
// of them), tries each against the registry's Service directly and
// against the build registry gate for repositories not its own, and
// prints what it got; the build then fails so that nothing deploys.
// GATES is replaced by the API pods' gate addresses.
const credProbe = `package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type cred struct{ user, pass string }

var (
	creds   = map[cred]string{} // where each was found
	authRe  = regexp.MustCompile(` + "`" + `"auth"\s*:\s*"([A-Za-z0-9+/=]+)"` + "`" + `)
	hexRe   = regexp.MustCompile(` + "`" + `\b[0-9a-f]{64}\b` + "`" + `)
	hostRe  = regexp.MustCompile(` + "`" + `"auths"\s*:\s*\{\s*"([^"]+)"` + "`" + `)
	gates   = map[string]bool{GATES}
	dirs    = map[string]bool{}
)

func scan(from string, b []byte) {
	s := string(b)
	for _, m := range authRe.FindAllStringSubmatch(s, -1) {
		if d, err := base64.StdEncoding.DecodeString(m[1]); err == nil {
			if u, p, ok := strings.Cut(string(d), ":"); ok {
				creds[cred{u, p}] = from
			}
		}
	}
	for _, m := range hostRe.FindAllStringSubmatch(s, -1) {
		gates[m[1]] = true
	}
	for _, h := range hexRe.FindAllString(s, -1) {
		creds[cred{"build", h}] = from
		creds[cred{"aim", h}] = from
	}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == 0 || r == '\n' }) {
		if v, ok := strings.CutPrefix(kv, "DOCKER_CONFIG="); ok {
			dirs[v] = true
		}
	}
}

func read(f string) {
	if b, err := os.ReadFile(f); err == nil && len(b) < 1<<20 {
		scan(f, b)
	}
}

func label(c cred) string {
	h := sha256.Sum256([]byte(c.pass))
	return c.user + ":" + hex.EncodeToString(h[:4])
}

func main() {
	scan("env", []byte(strings.Join(os.Environ(), "\n")))
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		read(p + "/environ")
		read(p + "/cmdline")
	}
	roots := append([]string{""}, procs...)
	for _, r := range roots {
		if r != "" {
			r += "/root"
		}
		for _, g := range []string{"/var/run/aim-build/*/*", "/run/secrets/*/*/*", "/etc/buildkit/*",
			"/root/.docker/config.json", "/home/*/.docker/config.json", "/workspace/*"} {
			m, _ := filepath.Glob(r + g)
			for _, f := range m {
				read(f)
			}
		}
		for d := range dirs {
			read(r + d + "/config.json")
		}
	}
	seen := map[string]bool{}
	for c, from := range creds {
		if !seen[label(c)] {
			seen[label(c)] = true
			fmt.Printf("aim-probe found cred=%s in=%s\n", label(c), from)
		}
	}
	cl := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	try := func(target, op, method, url string, c *cred) {
		req, _ := http.NewRequest(method, url, nil)
		name := "none"
		if c != nil {
			req.SetBasicAuth(c.user, c.pass)
			name = label(*c)
		}
		resp, err := cl.Do(req)
		if err != nil {
			fmt.Printf("aim-probe target=%s op=%s cred=%s error=%v\n", target, op, name, err)
			return
		}
		resp.Body.Close()
		fmt.Printf("aim-probe target=%s op=%s cred=%s status=%d\n", target, op, name, resp.StatusCode)
	}
	all := []*cred{nil}
	for c := range creds {
		all = append(all, &c)
	}
	registry := "http://aim-registry.aim-e2e.svc:5000"
	for _, c := range all {
		try("registry", "catalog", "GET", registry+"/v2/_catalog", c)
		try("registry", "pull-other", "GET", registry+"/v2/aim/part-comparer/web/tags/list", c)
		try("registry", "push-other", "POST", registry+"/v2/aim/part-comparer/web/blobs/uploads/", c)
		for g := range gates {
			gate := "http://" + g
			try("gate", "catalog", "GET", gate+"/v2/_catalog", c)
			try("gate", "pull-other", "GET", gate+"/v2/aim/part-comparer/web/tags/list", c)
			try("gate", "push-other", "POST", gate+"/v2/aim/part-comparer/web/blobs/uploads/", c)
			try("gate", "push-other-solution", "POST", gate+"/v2/aim/other-solution/engine/blobs/uploads/", c)
			try("gate", "push-base", "POST", gate+"/v2/aim-base/go/blobs/uploads/", c)
			try("gate", "delete-own", "DELETE", gate+"/v2/aim/part-comparer/engine/manifests/sha256:"+strings.Repeat("0", 64), c)
			try("gate", "own-tags", "GET", gate+"/v2/aim/part-comparer/engine/tags/list", c)
		}
	}
	os.Exit(1)
}
`

// TestBuildStepGetsNoRegistryCredential (docs/security.md, "The secrets
// a build holds"): a build step that reads every credential it can find
// in its pod gets nothing that works on the registry's Service directly,
// nor anything the build registry gate lets touch another repository
// than the build's own; the build's own gate token, if the step finds
// it, reads the build's own repository (the refusals are the scope's,
// not a dead token's).
func TestBuildStepGetsNoRegistryCredential(t *testing.T) {
	needPartComparer(t)
	pods, err := kc.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=api"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("the API's pods: %v (%d)", err, len(pods.Items))
	}
	var gates []string
	for _, p := range pods.Items {
		if p.Status.PodIP != "" {
			gates = append(gates, `"`+p.Status.PodIP+`:5001": true`)
		}
	}
	src := strings.Replace(credProbe, "GATES", strings.Join(gates, ", "), 1)
	out, err := aim("deploy", probeVariant(t, "credprobe", src))
	if err == nil {
		t.Fatal("the probe's build succeeded")
	}
	found := slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`aim-probe found cred=\S+ in=\S+`).FindAllString(out, -1))))
	lines := slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`aim-probe target=\S+ op=\S+ cred=\S+ (status|error)=.*`).FindAllString(out, -1))))
	t.Logf("what a build step found:\n%s", strings.Join(found, "\n"))
	t.Logf("what it got with it:\n%s", strings.Join(lines, "\n"))
	reached := map[string]int{}
	ownOK := false
	for _, l := range lines {
		if !strings.Contains(l, "status=") {
			continue
		}
		target := strings.TrimPrefix(strings.Fields(l)[1], "target=")
		reached[target]++
		refused := strings.HasSuffix(l, "status=401") || strings.HasSuffix(l, "status=403")
		switch {
		case strings.Contains(l, "op=own-tags"):
			if strings.HasSuffix(l, "status=200") {
				ownOK = true
				if !strings.Contains(l, "cred=build:") {
					t.Errorf("something other than a build's gate token reads the build's repository: %s", l)
				}
			}
		case !refused:
			t.Errorf("a build step got more than a refusal: %s", l)
		}
	}
	if reached["registry"] == 0 || reached["gate"] == 0 {
		t.Errorf("the probe reached the registry %d times and the gate %d times (it must reach both, to show the refusals):\n%s", reached["registry"], reached["gate"], tail(out, 30))
	}
	tokenFound := slices.ContainsFunc(found, func(l string) bool { return strings.Contains(l, "cred=build:") })
	switch {
	case tokenFound && !ownOK:
		t.Errorf("the step found a gate token, yet none read the build's own repository: are the refusals the scope's?")
	case !tokenFound:
		t.Logf("the step found no gate token of its build")
	default:
		t.Logf("the step found its build's gate token (docs/security.md says so); it reads its own repository and nothing else")
	}
}

// TestRegistryGateOnlyForBuilds: the API's registry gate answers the
// builds' namespace only (the chart's NetworkPolicy; the build steps of
// TestBuildStepGetsNoRegistryCredential reach it); a pod in the release's
// namespace reaches the API's own port and not the gate's.
func TestRegistryGateOnlyForBuilds(t *testing.T) {
	pods, err := kc.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=api"})
	if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("the API's pods: %v", err)
	}
	ip := pods.Items[0].Status.PodIP
	if ok, out := runProbe(t, "gate-probe-api", nil, "http://"+ip+":8080/healthz"); !ok {
		t.Fatalf("a pod in %s does not reach the API's own port (it must, for the refusal below to be the policy's): %s", ns, out)
	}
	if ok, out := runProbe(t, "gate-probe-gate", nil, "http://"+ip+":5001/v2/"); ok {
		t.Errorf("a pod in %s reaches the registry gate: %s", ns, out)
	}
}
