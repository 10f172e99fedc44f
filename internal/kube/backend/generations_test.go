package backend

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

func TestRollbackTarget(t *testing.T) {
	g := func(n int64, outcome string) v1alpha1.GenerationStatus {
		return v1alpha1.GenerationStatus{Generation: n, Outcome: outcome, Reason: map[string]string{v1alpha1.OutcomeFailed: "ErrImagePull"}[outcome]}
	}
	after := []v1alpha1.GenerationStatus{g(4, v1alpha1.OutcomeFailed), g(3, v1alpha1.OutcomeServing), g(2, v1alpha1.OutcomeReplaced), g(1, v1alpha1.OutcomeReplaced)}
	for _, tc := range []struct {
		name string
		gens []v1alpha1.GenerationStatus
		to   int64
		want int64  // the target, or 0
		err  string // else the error
	}{
		{name: "the one before the one serving", gens: after, want: 2},
		{name: "a chosen one", gens: after, to: 1, want: 1},
		{name: "the one serving", gens: after, to: 3, err: "generation 3 is the one serving s"},
		{name: "one that never served", gens: after, to: 4, err: "generation 4 of s never served (failed: ErrImagePull); roll back to one that did"},
		{name: "one no longer kept", gens: after, to: 9, err: "s has no generation 9 (aim history s lists those kept: the last that served, as the operator's --keep-generations says)"},
		{name: "none earlier", gens: after[:2], err: "s has no earlier generation that served"},
		{name: "none recorded", err: "s has no recorded generations yet (the operator lists them in its status once it has seen a deploy)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol := &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Status: v1alpha1.SolutionStatus{Generations: tc.gens}}
			got, err := rollbackTarget(sol, tc.to)
			switch {
			case tc.err != "" && (err == nil || err.Error() != tc.err):
				t.Errorf("error %v, want %q", err, tc.err)
			case tc.err == "" && (err != nil || got.Generation != tc.want):
				t.Errorf("got %+v, %v; want generation %d", got, err, tc.want)
			}
		})
	}
}
