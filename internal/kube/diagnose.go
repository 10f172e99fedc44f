package kube

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/check"
)

// Diagnose says why a solution's pods do not serve, for a failed wake or
// deploy: per component the first pod with a problem, what the kubelet
// reports of it, and the last lines it wrote.
func Diagnose(ctx context.Context, kc kubernetes.Interface, ns, name string) string {
	pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + name})
	if err != nil {
		return fmt.Sprintf("cannot list its pods: %v", err)
	}
	if len(pods.Items) == 0 {
		return "no pod was created (see `kubectl describe` of its deployments and replica sets)"
	}
	var out []string
	seen := map[string]bool{}
	items := pods.Items
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for i := range items {
		p := &items[i]
		comp := p.Labels[v1alpha1.LabelComponent]
		if seen[comp] {
			continue
		}
		why := PodProblem(p)
		if why == "" {
			continue
		}
		seen[comp] = true
		if tail := lastLines(ctx, kc, p, comp, 5); tail != "" {
			why += "; its output says: " + tail
		}
		out = append(out, fmt.Sprintf("component %s (pod %s): %s", comp, p.Name, why))
	}
	if len(out) == 0 {
		return "its pods run and are ready, but the gateway has not seen them yet"
	}
	return strings.Join(out, "; ")
}

// PodProblem is what keeps a pod from serving, in the kubelet's words;
// "" for a ready pod.
func PodProblem(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "" // going away: not the one to explain
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return "not scheduled: " + c.Message
		}
	}
	ready := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if ready {
		return ""
	}
	for _, cs := range p.Status.ContainerStatuses {
		var parts []string
		if w := cs.State.Waiting; w != nil {
			s := w.Reason
			if w.Message != "" {
				s += ": " + w.Message
			}
			parts = append(parts, s)
		}
		if t := cs.State.Terminated; t != nil {
			parts = append(parts, exitText(t))
		} else if t := cs.LastTerminationState.Terminated; t != nil {
			parts = append(parts, "last "+exitText(t))
		}
		if cs.RestartCount > 0 {
			parts = append(parts, fmt.Sprintf("restarted %d times", cs.RestartCount))
		}
		if cs.State.Running != nil && !cs.Ready {
			parts = append(parts, "running but not ready: nothing answers on port 8080 yet")
		}
		if len(parts) > 0 {
			return strings.Join(parts, ", ")
		}
	}
	if p.Status.Phase == corev1.PodPending {
		return "pending"
	}
	return "not ready"
}

func exitText(t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("exited with code %d", t.ExitCode)
	if t.Reason != "" && t.Reason != "Error" && t.Reason != "Completed" {
		s += " (" + t.Reason + ")"
	}
	return s
}

// lastLines are the lines, at most n, of a container's last output that
// say why it ended (check.ErrorLines: a crash report's first line, not the
// tail of its stack), joined by " | "; those of its previous run when it
// has restarted and is not running.
func lastLines(ctx context.Context, kc kubernetes.Interface, p *corev1.Pod, container string, n int) string {
	prev := false
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container && cs.State.Running == nil && cs.RestartCount > 0 {
			prev = true
		}
	}
	// Enough lines to hold a crash report: a Go panic's stacks run long.
	tail := int64(200)
	rc, err := kc.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, TailLines: &tail, Previous: prev}).Stream(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return ""
	}
	return strings.Join(check.ErrorLines(string(b), n), " | ")
}
