//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRemove(t *testing.T) {
	if out, err := aim("rm", "part-comparer"); err != nil {
		t.Fatal(err)
	} else {
		t.Log(out)
	}
	ctx := context.Background()
	if _, err := solution(ctx, "part-comparer"); err == nil {
		t.Error("the Solution is still there after aim rm")
	}
	err := waitFor(time.Minute, 250*time.Millisecond, "part-comparer's objects gone", func() (bool, error) {
		sel := metav1.ListOptions{LabelSelector: "aim.dev/solution=part-comparer"}
		d, err := kc.AppsV1().Deployments(ns).List(ctx, sel)
		if err != nil {
			return false, err
		}
		s, err := kc.CoreV1().Services(ns).List(ctx, sel)
		if err != nil {
			return false, err
		}
		n, err := kc.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
		if err != nil {
			return false, err
		}
		left := len(d.Items) + len(s.Items) + len(n.Items)
		return left == 0, fmt.Errorf("%d deployments, %d services, %d network policies left", len(d.Items), len(s.Items), len(n.Items))
	})
	if err != nil {
		t.Error(err)
	}
	code, body, _, err := get(ctx, "part-comparer", "/")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusNotFound {
		t.Errorf("GET part-comparer after rm: %d %s, want 404", code, body)
	}
	if out, err := aim("status", "part-comparer"); err == nil {
		t.Errorf("aim status after rm succeeded:\n%s", out)
	}
}
