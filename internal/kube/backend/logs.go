package backend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/aimhub/aim/internal/solution"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/runtime"
)

// Logs streams the logs of a solution's pods, of one component or of all
// of them interleaved by line; with more than one pod each line starts
// with "<component> | " (or "<component>#<n> | " for a component's
// further pods), as on Docker. A sleeping solution has no pods and so no
// logs.
func (s *Solutions) Logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	rc, err := s.logs(ctx, name, component, opts)
	return rc, refused("reading the logs of solution "+name, err)
}

func (s *Solutions) logs(ctx context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	sol, err := s.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if component != "" && !slicesContainsComponent(sol, component) {
		return nil, fmt.Errorf("solution %s has no component %q: %w", name, component, solution.ErrNotFound)
	}
	sel := v1alpha1.LabelSolution + "=" + name
	if component != "" {
		sel += "," + v1alpha1.LabelComponent + "=" + component
	}
	pods, err := s.kc.CoreV1().Pods(s.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", name, err)
	}
	var picked []corev1.Pod
	for _, p := range pods.Items {
		// A pod that never started a container has no log to read.
		if len(p.Status.ContainerStatuses) > 0 && (p.Status.ContainerStatuses[0].State.Waiting == nil || p.Status.ContainerStatuses[0].RestartCount > 0) {
			picked = append(picked, p)
		}
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("solution %s has no running pods (asleep, or not started yet): %w", name, solution.ErrNotFound)
	}
	sort.Slice(picked, func(i, j int) bool {
		a, b := picked[i], picked[j]
		if ca, cb := a.Labels[v1alpha1.LabelComponent], b.Labels[v1alpha1.LabelComponent]; ca != cb {
			return ca < cb
		}
		return a.CreationTimestamp.Before(&b.CreationTimestamp) || a.CreationTimestamp.Equal(&b.CreationTimestamp) && a.Name < b.Name
	})
	pr, pw := io.Pipe()
	var mu sync.Mutex // one line at a time
	var wg sync.WaitGroup
	var first error
	nth := map[string]int{}
	for _, p := range picked {
		comp := p.Labels[v1alpha1.LabelComponent]
		prefix := ""
		if len(picked) > 1 {
			prefix = comp
			if n := nth[comp]; n > 0 {
				prefix += fmt.Sprintf("#%d", n)
			}
			prefix += " | "
		}
		nth[comp]++
		po := &corev1.PodLogOptions{Container: comp, Follow: opts.Follow}
		if opts.Tail > 0 {
			t := int64(opts.Tail)
			po.TailLines = &t
		}
		rc, err := s.kc.CoreV1().Pods(s.cfg.Namespace).GetLogs(p.Name, po).Stream(ctx)
		if err != nil {
			pw.CloseWithError(err)
			return nil, fmt.Errorf("reading the logs of %s (pod %s): %w", comp, p.Name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rc.Close()
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				mu.Lock()
				_, werr := io.WriteString(pw, prefix+sc.Text()+"\n")
				mu.Unlock()
				if werr != nil {
					return // the reader went away
				}
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("reading the logs of %s: %w", comp, err)
				}
				mu.Unlock()
			}
		}()
	}
	go func() {
		wg.Wait()
		pw.CloseWithError(first)
	}()
	return pr, nil
}

func slicesContainsComponent(sol *v1alpha1.Solution, comp string) bool {
	for _, c := range sol.Spec.Components {
		if c.Name == comp {
			return true
		}
	}
	return false
}
