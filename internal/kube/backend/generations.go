package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// The operator keeps a Solution's generations as ControllerRevisions and
// lists them in its status (internal/operator/generations.go). History
// reads that list; Rollback writes an earlier generation's spec back, as
// a deploy does, so that its images run again without a build.

var _ api.Generations = (*Solutions)(nil)

// History lists a solution's generations, newest first, as the operator
// last reported them.
func (s *Solutions) History(ctx context.Context, name string, limit int) ([]store.Generation, error) {
	sol, err := s.fresh(ctx, name)
	if err != nil {
		return nil, refused("reading the history of solution "+name, err)
	}
	gens := sol.Status.Generations
	if limit > 0 && len(gens) > limit {
		gens = gens[:limit]
	}
	out := make([]store.Generation, 0, len(gens))
	for _, g := range gens {
		out = append(out, store.Generation{
			Solution: name, Generation: g.Generation, Images: g.Images, Digests: g.Digests,
			DeployedBy: g.DeployedBy, Outcome: store.Outcome(g.Outcome), Reason: g.Reason, RollbackOf: g.RollbackOf,
			CreatedAt: g.Time.Time, UpdatedAt: g.Time.Time,
		})
	}
	return out, nil
}

// fresh reads a solution from the API server: a history or a rollback
// right after a deploy must see the status the deploy waited for.
func (s *Solutions) fresh(ctx context.Context, name string) (*v1alpha1.Solution, error) {
	sol := &v1alpha1.Solution{}
	err := s.client.Get(ctx, s.key(name), sol)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading solution %s: %w", name, err)
	}
	return sol, nil
}

// Rollback serves generation to of a solution again (0: the one that
// served before the current one): its spec, from the ControllerRevision
// the operator kept, is written back as a deploy would, so its pods run
// that generation's images (nothing is built). If they cannot start (the
// nodes no longer have an image, say), the current spec is put back and
// the current pods, which the Deployments' rolling update kept, go on
// serving.
func (s *Solutions) Rollback(ctx context.Context, name string, to int64, by string, progress solution.Progress) (*solution.Info, error) {
	sol, err := s.fresh(ctx, name)
	if err != nil {
		return nil, refused("rolling back solution "+name, err)
	}
	target, err := rollbackTarget(sol, to)
	if err != nil {
		return nil, err
	}
	var rev appsv1.ControllerRevision
	err = s.client.Get(ctx, types.NamespacedName{Namespace: s.cfg.Namespace, Name: v1alpha1.RevisionName(name, target.Generation)}, &rev)
	if apierrors.IsNotFound(err) {
		return nil, &solution.InputError{Msg: fmt.Sprintf(
			"generation %d of %s is no longer kept (the operator keeps the specs of the last generations that served, --keep-generations); deploy that version again instead",
			target.Generation, name)}
	}
	if err != nil {
		return nil, refused("rolling back solution "+name, fmt.Errorf("reading generation %d of %s: %w", target.Generation, name, err))
	}
	var spec v1alpha1.SolutionSpec
	if err := json.Unmarshal(rev.Data.Raw, &spec); err != nil {
		return nil, fmt.Errorf("reading generation %d of %s (ControllerRevision %s): %w", target.Generation, name, rev.Name, err)
	}
	// Who may see and reach it is the current owner's to say, not an
	// earlier generation's.
	spec.Owner = v1alpha1.OwnerOf(sol)
	m, err := v1alpha1.ToManifest(name, spec)
	if err != nil {
		return nil, &solution.InputError{Msg: fmt.Sprintf("generation %d of %s cannot be served again: %v", target.Generation, name, err)}
	}
	in, err := s.deploy(ctx, solution.DeployRequest{Manifest: m, By: by, RollbackOf: target.Generation}, progress)
	if err != nil {
		return nil, refused("rolling back solution "+name, fmt.Errorf("generation %d of %s cannot be served again with its images (%s): %w",
			target.Generation, name, imageList(target.Images), err))
	}
	return in, nil
}

// imageList is "comp=ref, …" by component.
func imageList(images map[string]string) string {
	var l []string
	for _, c := range slices.Sorted(maps.Keys(images)) {
		l = append(l, c+"="+images[c])
	}
	return strings.Join(l, ", ")
}

// rollbackTarget is the generation a rollback to serves again, or why
// none can be.
func rollbackTarget(sol *v1alpha1.Solution, to int64) (*v1alpha1.GenerationStatus, error) {
	gens := sol.Status.Generations
	if len(gens) == 0 {
		return nil, &solution.InputError{Msg: fmt.Sprintf("%s has no recorded generations yet (the operator lists them in its status once it has seen a deploy)", sol.Name)}
	}
	cur := currentGeneration(gens)
	if to != 0 && to == cur {
		return nil, &solution.InputError{Msg: fmt.Sprintf("generation %d is the one serving %s", to, sol.Name)}
	}
	for i := range gens {
		g := &gens[i]
		served := g.Outcome == v1alpha1.OutcomeServing || g.Outcome == v1alpha1.OutcomeReplaced
		switch {
		case to == 0 && g.Generation < cur && g.Outcome == v1alpha1.OutcomeReplaced:
			return g, nil
		case to != 0 && g.Generation == to && !served:
			return nil, &solution.InputError{Msg: fmt.Sprintf("generation %d of %s never served (%s: %s); roll back to one that did", to, sol.Name, g.Outcome, g.Reason)}
		case to != 0 && g.Generation == to:
			return g, nil
		}
	}
	if to == 0 {
		return nil, &solution.InputError{Msg: fmt.Sprintf("%s has no earlier generation that served", sol.Name)}
	}
	return nil, &solution.InputError{Msg: fmt.Sprintf(
		"%s has no generation %d (aim history %s lists those kept: the last that served, as the operator's --keep-generations says)", sol.Name, to, sol.Name)}
}

// currentGeneration is the number of the generation serving, else of the
// newest; 0 for none.
func currentGeneration(gens []v1alpha1.GenerationStatus) int64 {
	for _, g := range gens {
		if g.Outcome == v1alpha1.OutcomeServing {
			return g.Generation
		}
	}
	if len(gens) > 0 {
		return gens[0].Generation
	}
	return 0
}

// markFailed notes on the generation of the solution's metadata.generation
// solGen that it failed and why, for the history: the operator, which
// sees no pods, would only know that another spec took its place. A
// generation the operator had not recorded yet is left alone.
func (s *Solutions) markFailed(ctx context.Context, name string, solGen int64, why string) {
	var l appsv1.ControllerRevisionList
	if err := s.client.List(ctx, &l, client.InNamespace(s.cfg.Namespace), client.MatchingLabels{v1alpha1.LabelSolution: name}); err != nil {
		s.log.Warn("noting why a generation failed", "solution", name, "err", err)
		return
	}
	for i := range l.Items {
		rev := &l.Items[i]
		if rev.Annotations[v1alpha1.AnnotationSolutionGeneration] != strconv.FormatInt(solGen, 10) {
			continue
		}
		if o := rev.Annotations[v1alpha1.AnnotationOutcome]; o == v1alpha1.OutcomeServing || o == v1alpha1.OutcomeReplaced {
			return // it served: the spec of a generation that served was deployed again
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
			v1alpha1.AnnotationOutcome: v1alpha1.OutcomeFailed, v1alpha1.AnnotationReason: why,
		}}})
		if err := s.client.Patch(ctx, rev, client.RawPatch(types.MergePatchType, patch)); err != nil {
			s.log.Warn("noting why a generation failed", "solution", name, "generation", rev.Revision, "err", err)
		}
		return
	}
}
