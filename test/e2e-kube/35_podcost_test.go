//go:build kube && podcost

package e2ekube

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodCost scales Deployments 0→1 that differ from the operator's pod
// by one feature each, to find what of it costs the kubelet time. A tool
// more than a test, so behind its own build tag (not run by make test):
//
//	KEEP_CLUSTER=1 AIM_E2E_POD_COST=10 go test -tags kube,podcost -run PodCost -v ./test/e2e-kube/
func TestPodCost(t *testing.T) {
	rounds := roundsFromEnv(t, "AIM_E2E_POD_COST", 10)
	ctx := context.Background()
	op := benchSolution(t, ctx)
	variant := func(name string, edit func(*corev1.PodSpec)) *appsv1.Deployment {
		d := relabeled(op, name)
		if edit != nil {
			edit(&d.Spec.Template.Spec)
		}
		return d
	}
	deps := []*appsv1.Deployment{
		floorDeployment(),
		variant("v-op", nil),
		variant("v-no-tmp", func(p *corev1.PodSpec) { p.Volumes = nil; p.Containers[0].VolumeMounts = nil }),
		variant("v-disk-tmp", func(p *corev1.PodSpec) { p.Volumes[0].EmptyDir.Medium = corev1.StorageMediumDefault }),
		variant("v-no-probe", func(p *corev1.PodSpec) { p.Containers[0].ReadinessProbe = nil }),
		variant("v-no-alias", func(p *corev1.PodSpec) { p.HostAliases = nil }),
		variant("v-no-seccomp", func(p *corev1.PodSpec) { p.SecurityContext.SeccompProfile = nil }),
		variant("v-no-tmp-seccomp", func(p *corev1.PodSpec) {
			p.Volumes = nil
			p.Containers[0].VolumeMounts = nil
			p.SecurityContext.SeccompProfile = nil
		}),
		variant("v-no-affinity", func(p *corev1.PodSpec) { p.Affinity = nil }),
		plainFloorDeployment(),
	}
	if only := os.Getenv("AIM_E2E_POD_COST_ONLY"); only != "" {
		keep := strings.Split(only, ",")
		deps = slices.DeleteFunc(deps, func(d *appsv1.Deployment) bool { return !slices.Contains(keep, d.Name) })
	}
	for _, d := range deps {
		_ = kc.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{})
		if _, err := kc.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = kc.AppsV1().Deployments(ns).Delete(context.Background(), d.Name, metav1.DeleteOptions{}) }()
	}
	times := map[string][]phases{}
	jitters := map[string][]time.Duration{}
	for _, d := range deps {
		jitters[d.Name] = startJitters(rounds)
	}
	var sels []string
	for _, d := range deps {
		sels = append(sels, "app="+d.Name)
	}
	for i := range rounds {
		for k := range deps {
			d := deps[(i+k)%len(deps)]
			if err := waitNoPods(ctx, sels...); err != nil {
				t.Fatal(err)
			}
			time.Sleep(settle + jitters[d.Name][i])
			ph, err := floorOnce(ctx, d.Name)
			if err != nil {
				t.Fatalf("%s: %v", d.Name, err)
			}
			times[d.Name] = append(times[d.Name], ph)
		}
	}
	for _, d := range deps {
		ps := times[d.Name]
		var ans []float64
		for _, p := range ps {
			ans = append(ans, ms(p.answer))
		}
		slices.Sort(ans)
		t.Logf("%-14s created %5.0f  ip %6.0f  answer %6.0f ms (median), sorted answers %v", d.Name,
			ms(medianOf(ps, created)), ms(medianOf(ps, ipKnown)), ms(medianOf(ps, answer)), ans)
	}
}
