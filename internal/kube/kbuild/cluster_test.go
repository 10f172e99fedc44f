//go:build cluster

// The rendered Job against a real kube-apiserver (envtest): the API server
// accepts it as it is, and Pod Security admission admits its pod where the
// chart's builds' namespace enforces "privileged", and not at "baseline".
//
//	go test -tags cluster ./internal/kube/kbuild/ -run Cluster
//
// It needs etcd and kube-apiserver as test/apiserver says.
package kbuild

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/aimhub/aim/test/apiserver"
)

func TestClusterJobAdmitted(t *testing.T) {
	cs, err := kubernetes.NewForConfig(apiserver.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for ns, level := range map[string]string{"aim-system-builds": "privileged", "strict": "baseline"} {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": level},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	job, err := chartOptions().Job(partComparerAPI())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the API server refuses the rendered Job: %v", err)
	}
	pod := func(ns string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "build", Namespace: ns}, Spec: job.Spec.Template.Spec}
	}
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	if _, err := cs.CoreV1().Pods("aim-system-builds").Create(ctx, pod("aim-system-builds"), dry); err != nil {
		t.Fatalf("the build pod is refused in the builds' namespace (privileged): %v", err)
	}
	_, err = cs.CoreV1().Pods("strict").Create(ctx, pod("strict"), dry)
	if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Fatalf("the build pod in a baseline namespace: %v, want a PodSecurity refusal", err)
	}
	t.Logf("at baseline, as docs/security.md says: %v", err)
}
