//go:build cluster

package operator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
)

// testGenerations: each spec the solution is given is a generation, kept
// as a ControllerRevision it owns with who deployed it, listed in its
// status; the newest three that served are kept. The API's service
// account reads them and notes a failure's reason, which the operator
// then lists.
func (e *env) testGenerations(t *testing.T) {
	ctx := context.Background()
	name := "gens"
	deploy := func(image, by string, rollbackOf int64) {
		t.Helper()
		e.update(t, name, func(s *v1alpha1.Solution) {
			s.Spec.Components[0].Image = image
			note := fmt.Sprintf(`{"generation":%d,"by":%q,"rollbackOf":%d}`, s.Generation+1, by, rollbackOf)
			s.Annotations = map[string]string{v1alpha1.AnnotationDeploy: note}
		})
	}
	history := func(want string) {
		t.Helper()
		eventually(t, "history "+want, 20*time.Second, func() error {
			s, err := e.get(name)
			if err != nil {
				return err
			}
			var got []string
			for _, g := range s.Status.Generations {
				x := fmt.Sprintf("%d %s %s", g.Generation, g.Images["web"], g.Outcome)
				if g.DeployedBy != "" {
					x += " by " + g.DeployedBy
				}
				if g.RollbackOf != 0 {
					x += fmt.Sprintf(" rollback of %d", g.RollbackOf)
				}
				if g.Reason != "" {
					x += " (" + g.Reason + ")"
				}
				got = append(got, x)
			}
			if s.Status.State != v1alpha1.StateRunning || strings.Join(got, "; ") != want {
				return fmt.Errorf("%s: %s", s.Status.State, strings.Join(got, "; "))
			}
			return nil
		})
	}
	sol := &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Annotations: map[string]string{v1alpha1.AnnotationDeploy: `{"generation":1,"by":"ci"}`}},
		Spec:       v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: "w:1"}}},
	}
	if err := e.c.Create(ctx, sol); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.c.Delete(context.Background(), sol) })
	history("1 w:1 serving by ci")
	var rev appsv1.ControllerRevision
	if err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: v1alpha1.RevisionName(name, 1)}, &rev); err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(&rev); ref == nil || ref.UID != sol.UID || rev.Revision != 1 || !strings.Contains(string(rev.Data.Raw), `"image":"w:1"`) {
		t.Errorf("revision %s: owner %+v, revision %d, data %s", rev.Name, ref, rev.Revision, rev.Data.Raw)
	}

	deploy("w:2", "ana@example.com", 0)
	history("2 w:2 serving by ana@example.com; 1 w:1 replaced by ci")
	deploy("w:1", "ci", 1)
	history("3 w:1 serving by ci rollback of 1; 2 w:2 replaced by ana@example.com; 1 w:1 replaced by ci")
	// Someone else's edit is not the last deployer's.
	e.update(t, name, func(s *v1alpha1.Solution) { s.Spec.Components[0].Image = "w:4" })
	history("4 w:4 serving; 3 w:1 replaced by ci rollback of 1; 2 w:2 replaced by ana@example.com")
	eventually(t, "generation 1's revision is deleted", 10*time.Second, func() error {
		err := e.c.Get(ctx, types.NamespacedName{Namespace: e.ns, Name: v1alpha1.RevisionName(name, 1)}, &appsv1.ControllerRevision{})
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %v", err)
		}
		return nil
	})

	// An update whose pods never become available (the stand-in leaves
	// images under unavailable/ alone), as the API would see it: it
	// notes why, with its own permissions, and puts generation 4's spec
	// back, which stays generation 4.
	deploy("unavailable/w:5", "ci", 0)
	eventually(t, "generation 5 is recorded", 10*time.Second, func() error {
		s, err := e.get(name)
		if err != nil || len(s.Status.Generations) == 0 || s.Status.Generations[0].Generation != 5 {
			return fmt.Errorf("%+v %v", s.Status.Generations, err)
		}
		return nil
	})
	api, err := client.New(as(e.cfg, e.ns, "aim-api"), client.Options{Scheme: e.c.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var revs appsv1.ControllerRevisionList
	if err := api.List(ctx, &revs, client.InNamespace(e.ns), client.MatchingLabels{v1alpha1.LabelSolution: name}); err != nil || len(revs.Items) != 4 {
		t.Fatalf("the API lists %d revisions: %v", len(revs.Items), err)
	}
	five := &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: v1alpha1.RevisionName(name, 5)}}
	patch := []byte(`{"metadata":{"annotations":{"aim.dev/outcome":"failed","aim.dev/reason":"ErrImagePull"}}}`)
	if err := api.Patch(ctx, five, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
	deploy("w:4", "ci", 0)
	history("5 unavailable/w:5 failed by ci (ErrImagePull); 4 w:4 serving; 3 w:1 replaced by ci rollback of 1; 2 w:2 replaced by ana@example.com")
	if err := api.Delete(ctx, five); !apierrors.IsForbidden(err) {
		t.Errorf("the API deleted a revision: %v", err)
	}

	// Generation 3's spec back: a rollback, so a new generation.
	deploy("w:1", "ci", 3)
	history("6 w:1 serving by ci rollback of 3; 5 unavailable/w:5 failed by ci (ErrImagePull); 4 w:4 replaced; 3 w:1 replaced by ci rollback of 1")
}
