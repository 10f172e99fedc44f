//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/api/v1alpha1"
)

// rollbackManifest is a solution that never sleeps (so that "keeps
// serving" is one answer after another), of one image.
const rollbackManifest = `name: rollback
title: Rollback
description: Two versions that answer differently.
components:
  - name: web
    image: %s
    resources: {cpu: "100m", memory: 64Mi}
scaling: {min: 1, max: 1}
`

// TestRollback deploys two versions through the in-cluster API, rolls
// back to the first (its pods run its image again, nothing is built) and
// then tries to serve the second again after its image left the node:
// that fails with a message naming the image, and the first goes on
// answering throughout. aim history lists what happened.
func TestRollback(t *testing.T) {
	ctx := context.Background()
	v1, v2 := rollbackImages(t)
	dir := t.TempDir()
	deploy := func(image string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(fmt.Sprintf(rollbackManifest, image)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := aim("deploy", dir); err != nil {
			t.Fatal(err)
		} else {
			t.Log(out)
		}
	}
	t.Cleanup(func() { _, _ = aim("remove", "rollback") })
	// v1 answers HTML, v2 (MODE=json-root) JSON.
	answers := func(want string) {
		t.Helper()
		err := waitFor(30*time.Second, 200*time.Millisecond, "the gateway answers "+want, func() (bool, error) {
			code, body, _, err := get(ctx, "rollback", "/")
			if err != nil {
				return false, err
			}
			return code == 200 && strings.Contains(body, want), fmt.Errorf("%d %q", code, tail(body, 2))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deploy(v1)
	answers("hello from")
	deploy(v2)
	answers(`{"hello":"world"}`)

	out, err := aim("rollback", "rollback")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
	if !regexp.MustCompile(`rollback serves generation 1 again as generation 3, at \S+ \(took \d+\.\ds\)`).MatchString(out) {
		t.Errorf("aim rollback says %q", out)
	}
	answers("hello from")
	pods, err := podsOf(ctx, "rollback", "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if img := p.Spec.Containers[0].Image; img != v1 {
			t.Errorf("pod %s runs %s, want %s", p.Name, img, v1)
		}
	}

	// v2 leaves the node; its generation cannot serve again, and v1
	// answers all along.
	if _, err := sh(repo, nil, "ctr", "--address", filepath.Join(clusterDir, "run/containerd.sock"), "--namespace", "k8s.io",
		"images", "rm", "docker.io/"+v2); err != nil {
		t.Fatal(err)
	}
	stop, wrong := watchAnswers(ctx, "rollback", "hello from")
	out, err = aim("rollback", "rollback", "--to", "2")
	bad := stop()
	if err == nil {
		t.Fatalf("a rollback to a generation whose image is gone succeeded:\n%s", out)
	}
	t.Log(err)
	msg := err.Error()
	if !strings.Contains(msg, "generation 2 of rollback cannot be served again with its images (web="+v2+")") ||
		!regexp.MustCompile(`ErrImagePull|ImagePullBackOff|ErrImageNeverPull`).MatchString(msg) || !strings.Contains(msg, "keeps serving") {
		t.Errorf("the failed rollback says %q; want which generation, its image, why, and that the current one serves", msg)
	}
	if bad > 0 {
		t.Errorf("%d answers during the failed rollback were not the current version's, e.g. %s", bad, wrong())
	}
	answers("hello from")
	waitState(t, "rollback", v1alpha1.StateRunning, time.Minute)

	hist, err := aim("history", "rollback")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(hist)
	for _, re := range []string{
		`(?m)^4 .* failed \(rollback to 2\): .*web=` + regexp.QuoteMeta(v2) + `@-$`,
		// The digests as the node ran the images.
		`(?m)^3 .* serving \(rollback to 1\)\s+web=` + regexp.QuoteMeta(v1) + `@[^-\s]`,
		`(?m)^2 .* replaced\s+web=` + regexp.QuoteMeta(v2) + `@[^-\s]`,
		`(?m)^1 .* replaced\s+web=` + regexp.QuoteMeta(v1) + `@[^-\s]`,
	} {
		if !regexp.MustCompile(re).MatchString(hist) {
			t.Errorf("aim history has no line like %s", re)
		}
	}
	if out, err := aim("rollback", "rollback", "--to", "4"); err == nil || !strings.Contains(err.Error(), "generation 4 of rollback never served") {
		t.Errorf("a rollback to a generation that never served: %v\n%s", err, out)
	}
}

// rollbackImages builds two images of the test server that answer
// differently, tagged for this test alone, and imports them: imported,
// not pushed to the registry, so that removing one from the node makes
// its generation one that cannot serve again (the node would pull it back
// from the registry).
func rollbackImages(t *testing.T) (string, string) {
	t.Helper()
	var refs []string
	for _, mode := range []string{"", "json-root"} {
		d := t.TempDir()
		df := fmt.Sprintf("FROM %s\nENV MODE=%s\nLABEL aim.test=rollback\n", images["testserver-local"], mode)
		if err := os.WriteFile(filepath.Join(d, "Dockerfile"), []byte(df), 0o644); err != nil {
			t.Fatal(err)
		}
		ref, err := dockerBuild("aim-e2e-kroll/rollback", d)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if _, err := sh(repo, nil, "test/cluster/import-image.sh", refs...); err != nil {
		t.Fatal(err)
	}
	return refs[0], refs[1]
}

// watchAnswers asks the gateway for a solution every 100 ms until stop,
// which says how many answers were not 200 with want in them; wrong
// shows one.
func watchAnswers(ctx context.Context, sol, want string) (stop func() int, wrong func() string) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		mu    sync.Mutex
		bad   int
		first string
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			code, body, _, err := get(ctx, sol, "/")
			if ctx.Err() != nil {
				return
			}
			if err != nil || code != 200 || !strings.Contains(body, want) {
				mu.Lock()
				bad++
				if first == "" {
					first = fmt.Sprintf("%d %q %v", code, tail(body, 2), err)
				}
				mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() int {
			cancel()
			wg.Wait()
			return bad
		}, func() string {
			mu.Lock()
			defer mu.Unlock()
			return first
		}
}
