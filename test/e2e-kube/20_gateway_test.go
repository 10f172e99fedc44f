//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

func gatewayPods(ctx context.Context) ([]corev1.Pod, error) {
	l, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyGateways waits until want gateway pods are ready and returns them.
func readyGateways(t *testing.T, want int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	err := waitFor(3*time.Minute, 250*time.Millisecond, fmt.Sprintf("%d ready gateway pods", want), func() (bool, error) {
		all, err := gatewayPods(context.Background())
		if err != nil {
			return false, err
		}
		pods = pods[:0]
		for _, p := range all {
			if podReady(&p) {
				pods = append(pods, p)
			}
		}
		return len(pods) == want && len(all) == want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

// TestRestartedGatewayWakesNothing restarts every gateway replica while a
// solution sleeps and another runs: the sleeper stays asleep, its
// last-active annotation unchanged, and the runner keeps running.
func TestRestartedGatewayWakesNothing(t *testing.T) {
	ctx := context.Background()
	waitAsleep(t, "part-comparer", idle+2*time.Minute)
	before, err := solution(ctx, "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	stamp := before.Annotations[v1alpha1.AnnotationLastActive]
	if stamp == "" {
		t.Fatal("part-comparer has no last-active annotation although it had requests")
	}
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=gateway"})
	if err != nil || len(deps.Items) != 1 {
		t.Fatalf("want one gateway Deployment: %v", err)
	}
	if out, err := kubectl("rollout", "restart", "-n", ns, "deployment/"+deps.Items[0].Name); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	if out, err := kubectl("rollout", "status", "-n", ns, "deployment/"+deps.Items[0].Name, "--timeout=3m"); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	// A few activity intervals of the new replicas.
	time.Sleep(5 * time.Second)
	after, err := solution(ctx, "part-comparer")
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Annotations[v1alpha1.AnnotationLastActive]; got != stamp {
		t.Errorf("restarted gateways moved part-comparer's last activity from %s to %s", stamp, got)
	}
	if n, err := allPodsOf(ctx, "part-comparer"); err != nil || n != 0 {
		t.Errorf("restarted gateways woke part-comparer: %d pods (%v)", n, err)
	}
	if pods, err := podsOf(ctx, "hello", ""); err != nil || len(pods) == 0 {
		t.Errorf("hello stopped running across the gateways' restart: %v", err)
	}
}

// TestGatewayReplicaKilledUnderLoad deletes one of the two gateway pods
// while clients send requests through the gateway's Service: the pod
// drains, so no request fails, and the other replica serves alone until
// the replacement is ready.
func TestGatewayReplicaKilledUnderLoad(t *testing.T) {
	awake(t, "hello", "")
	pods := readyGateways(t, 2)
	victim := pods[0].Name

	var ok, failed atomic.Int64
	var afterKill, beforeReplacement atomic.Int64
	var killed, replaced atomic.Bool
	var mu sync.Mutex
	var failures []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	const workers = 16
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				code, body, _, err := get(rctx, "hello", "/whoami")
				rcancel()
				if err == nil && code == http.StatusOK {
					ok.Add(1)
					if killed.Load() {
						afterKill.Add(1)
						if !replaced.Load() {
							beforeReplacement.Add(1)
						}
					}
					continue
				}
				failed.Add(1)
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s: %d %v %.80s", time.Now().Format("15:04:05.000"), code, err, body))
				mu.Unlock()
			}
		}()
	}
	time.Sleep(3 * time.Second)
	t.Logf("deleting gateway pod %s after %d requests", victim, ok.Load())
	killed.Store(true)
	if out, err := kubectl("delete", "pod", "-n", ns, victim, "--wait=false"); err != nil {
		t.Error(err)
	} else {
		t.Log(strings.TrimSpace(out))
	}
	err := waitFor(3*time.Minute, 100*time.Millisecond, "a replacement gateway pod ready", func() (bool, error) {
		all, err := gatewayPods(context.Background())
		if err != nil {
			return false, err
		}
		n := 0
		for _, p := range all {
			if p.Name != victim && podReady(&p) {
				n++
			}
		}
		return n == 2, nil
	})
	replaced.Store(true)
	if err != nil {
		t.Error(err)
	}
	// And the victim gone, with its drain.
	_ = waitFor(time.Minute, 200*time.Millisecond, "the deleted pod gone", func() (bool, error) {
		_, err := kc.CoreV1().Pods(ns).Get(context.Background(), victim, metav1.GetOptions{})
		return err != nil, nil
	})
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	t.Logf("%d requests answered 200 (%d after the delete, %d of them before the replacement was ready), %d failed",
		ok.Load(), afterKill.Load(), beforeReplacement.Load(), failed.Load())
	for i, f := range failures {
		if i == 10 {
			break
		}
		t.Log(f)
	}
	if failed.Load() > 0 {
		t.Errorf("%d requests failed while a gateway replica was deleted", failed.Load())
	}
	if beforeReplacement.Load() == 0 {
		t.Error("no request was answered between the delete and the replacement's readiness: the other replica did not serve")
	}
}
