package operator

import (
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/aimhub/aim/api/v1alpha1"
)

// specOf is a one-component spec running image.
func specOf(image string) v1alpha1.SolutionSpec {
	return v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: image}}}
}

// gen is a recorded generation n of image, for metadata.generation solGen.
func gen(n int64, image, outcome string, solGen int64) *generation {
	s := specOf(image)
	return &generation{
		rev:    &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.RevisionName("s", n)}, Revision: n},
		spec:   specJSON(s),
		solGen: solGen,
		rec:    v1alpha1.GenerationStatus{Generation: n, Images: imagesOf(s), Outcome: outcome},
	}
}

// summary is a plan in one line: the status's generations, then what is
// created, updated and dropped.
func summary(p generationPlan) string {
	var b strings.Builder
	for _, g := range p.status {
		fmt.Fprintf(&b, "%d %s", g.Generation, g.Outcome)
		if g.Reason != "" {
			fmt.Fprintf(&b, " (%s)", g.Reason)
		}
		if g.DeployedBy != "" {
			fmt.Fprintf(&b, " by %s", g.DeployedBy)
		}
		if g.RollbackOf != 0 {
			fmt.Fprintf(&b, " rollback of %d", g.RollbackOf)
		}
		b.WriteString("; ")
	}
	fmt.Fprintf(&b, "current %d", p.current.rec.Generation)
	if p.create {
		b.WriteString(" created")
	}
	for _, g := range p.update {
		fmt.Fprintf(&b, ", update %d", g.rec.Generation)
	}
	for _, g := range p.drop {
		fmt.Fprintf(&b, ", drop %d", g.rec.Generation)
	}
	return b.String()
}

func TestPlanGenerations(t *testing.T) {
	note := func(gen int64, by string, of int64) string {
		return fmt.Sprintf(`{"generation":%d,"by":%q,"rollbackOf":%d}`, gen, by, of)
	}
	for _, tc := range []struct {
		name   string
		image  string // the solution's spec
		solGen int64  // its metadata.generation
		note   string // its aim.dev/deploy annotation
		gens   []*generation
		state  string
		keep   int
		want   string
	}{
		{
			name: "first deploy", image: "w:1", solGen: 1, note: note(1, "ci", 0), state: v1alpha1.StateDeploying,
			want: "1 deploying by ci; current 1 created",
		},
		{
			name: "it serves", image: "w:1", solGen: 1, state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeDeploying, 1)},
			want: "1 serving; current 1, update 1",
		},
		{
			name: "nothing changed, nothing written", image: "w:1", solGen: 1, state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1)},
			want: "1 serving; current 1",
		},
		{
			name: "an update starts; the one serving goes on serving", image: "w:2", solGen: 2, note: note(2, "ana@example.com", 0), state: v1alpha1.StateDeploying,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1)},
			want: "2 deploying by ana@example.com; 1 serving; current 2 created",
		},
		{
			name: "the update serves; the one before is replaced", image: "w:2", solGen: 2, state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1), gen(2, "w:2", v1alpha1.OutcomeDeploying, 2)},
			want: "2 serving; 1 replaced; current 2, update 2, update 1",
		},
		{
			name: "a failed update put back stays the generation serving", image: "w:1", solGen: 3, note: note(3, "ci", 0), state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1), gen(2, "w:bad", v1alpha1.OutcomeDeploying, 2)},
			want: "2 failed (generation 1 took its place before it served); 1 serving; current 1, update 2, update 1",
		},
		{
			name: "the API's reason of a failure stays", image: "w:1", solGen: 3, state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 3), func() *generation {
				g := gen(2, "w:bad", v1alpha1.OutcomeFailed, 2)
				g.rec.Reason = "ErrImagePull"
				return g
			}()},
			want: "2 failed (ErrImagePull); 1 serving; current 1",
		},
		{
			name: "a rollback is a new generation", image: "w:1", solGen: 3, note: note(3, "ci", 1), state: v1alpha1.StateDeploying,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeReplaced, 1), gen(2, "w:2", v1alpha1.OutcomeServing, 2)},
			want: "3 deploying by ci rollback of 1; 2 serving; 1 replaced; current 3 created",
		},
		{
			name: "a note for another generation is not this one's", image: "w:2", solGen: 5, note: note(4, "ci", 1), state: v1alpha1.StateDeploying,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 4)},
			want: "2 deploying; 1 serving; current 2 created",
		},
		{
			name: "a spec that fails in the cluster", image: "w:2", solGen: 2, state: v1alpha1.StateFailed,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1), gen(2, "w:2", v1alpha1.OutcomeDeploying, 2)},
			want: "2 failed (component web: forbidden); 1 serving; current 2, update 2",
		},
		{
			name: "a failed one that serves after all", image: "w:2", solGen: 2, state: v1alpha1.StateRunning,
			gens: []*generation{gen(1, "w:1", v1alpha1.OutcomeServing, 1), gen(2, "w:2", v1alpha1.OutcomeFailed, 2)},
			want: "2 serving; 1 replaced; current 2, update 2, update 1",
		},
		{
			name: "kept: the newest that served and as many that failed", image: "w:6", solGen: 9, state: v1alpha1.StateRunning, keep: 2,
			gens: []*generation{
				gen(1, "w:1", v1alpha1.OutcomeReplaced, 1), gen(2, "w:bad", v1alpha1.OutcomeFailed, 2),
				gen(3, "w:3", v1alpha1.OutcomeReplaced, 3), gen(4, "w:bad", v1alpha1.OutcomeFailed, 5),
				gen(5, "w:bad", v1alpha1.OutcomeFailed, 6), gen(6, "w:6", v1alpha1.OutcomeServing, 9),
			},
			want: "6 serving; 5 failed; 4 failed; 3 replaced; current 6, drop 2, drop 1",
		},
		{
			name: "the current one is kept whatever became of it", image: "w:1", solGen: 7, state: v1alpha1.StateDeploying, keep: 1,
			gens: []*generation{
				gen(1, "w:1", v1alpha1.OutcomeDeploying, 7), gen(2, "w:2", v1alpha1.OutcomeReplaced, 2),
				gen(3, "w:3", v1alpha1.OutcomeServing, 3), gen(4, "w:bad", v1alpha1.OutcomeFailed, 5),
			},
			want: "4 failed; 3 serving; 1 deploying; current 1, drop 2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sol := &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "s", Generation: tc.solGen}, Spec: specOf(tc.image)}
			if tc.note != "" {
				sol.Annotations = map[string]string{v1alpha1.AnnotationDeploy: tc.note}
			}
			keep := tc.keep
			if keep == 0 {
				keep = 3
			}
			p := planGenerations(sol, tc.gens, tc.state, "component web: forbidden", keep, t0)
			if got := summary(p); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if p.current.solGen != tc.solGen {
				t.Errorf("the current generation is for metadata.generation %d, want %d", p.current.solGen, tc.solGen)
			}
		})
	}
}

// TestReadGeneration: what the operator writes, it reads back.
func TestReadGeneration(t *testing.T) {
	sol := &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n", UID: "u", Generation: 4}, Spec: specOf("w:1")}
	g := &generation{spec: specJSON(sol.Spec), solGen: 4, rec: v1alpha1.GenerationStatus{
		Generation: 2, Images: map[string]string{"web": "w:1"}, Digests: map[string]string{"web": "sha256:ab"},
		Outcome: v1alpha1.OutcomeReplaced, DeployedBy: "ci", RollbackOf: 1,
	}}
	r := &Reconciler{}
	rev := r.revision(sol, g)
	if rev.Name != "s-gen-2" || rev.Revision != 2 || metav1.GetControllerOf(rev).UID != "u" {
		t.Errorf("revision %s %d, owner %+v", rev.Name, rev.Revision, metav1.GetControllerOf(rev))
	}
	back, ok := readGeneration(rev)
	if !ok {
		t.Fatal("not read back")
	}
	if fmt.Sprint(back.rec) != fmt.Sprint(g.rec) || back.solGen != 4 || string(back.spec) != string(g.spec) {
		t.Errorf("read back %+v (for %d), want %+v", back.rec, back.solGen, g.rec)
	}
	if _, ok := readGeneration(&appsv1.ControllerRevision{}); ok {
		t.Error("a revision without a spec was read")
	}
}
