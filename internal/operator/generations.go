package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
)

// Each distinct spec a Solution is given is a generation, kept as a
// ControllerRevision the Solution owns (v1alpha1.RevisionName), so that
// aim's API can put an earlier one back (aim rollback) and list them (aim
// history, from status.generations). Kubernetes's own Deployment
// revisions are not enough: the unit is the whole spec, every component
// at once.

// generation is one ControllerRevision, read.
type generation struct {
	rev    *appsv1.ControllerRevision // nil for one to create
	spec   []byte                     // the spec, as JSON
	solGen int64                      // AnnotationSolutionGeneration
	rec    v1alpha1.GenerationStatus
	dirty  bool // its annotations changed
}

// readGeneration reads a ControllerRevision the operator wrote; ok is
// false for one it cannot read (made by hand), which is left alone.
func readGeneration(rev *appsv1.ControllerRevision) (*generation, bool) {
	var spec v1alpha1.SolutionSpec
	if err := json.Unmarshal(rev.Data.Raw, &spec); err != nil {
		return nil, false
	}
	a := rev.Annotations
	g := &generation{rev: rev, spec: specJSON(spec), rec: v1alpha1.GenerationStatus{
		Generation: rev.Revision, Time: rev.CreationTimestamp, Images: imagesOf(spec),
		Outcome: a[v1alpha1.AnnotationOutcome], Reason: a[v1alpha1.AnnotationReason], DeployedBy: a[v1alpha1.AnnotationDeployedBy],
	}}
	g.solGen, _ = strconv.ParseInt(a[v1alpha1.AnnotationSolutionGeneration], 10, 64)
	g.rec.RollbackOf, _ = strconv.ParseInt(a[v1alpha1.AnnotationRollbackOf], 10, 64)
	if d := a[v1alpha1.AnnotationDigests]; d != "" {
		_ = json.Unmarshal([]byte(d), &g.rec.Digests)
	}
	if g.rec.Outcome == "" {
		g.rec.Outcome = v1alpha1.OutcomeDeploying
	}
	return g, true
}

func specJSON(s v1alpha1.SolutionSpec) []byte {
	b, _ := json.Marshal(s) // a struct of plain fields always marshals
	return b
}

func imagesOf(s v1alpha1.SolutionSpec) map[string]string {
	im := map[string]string{}
	for _, c := range s.Components {
		im[c.Name] = c.Image
	}
	return im
}

// generationPlan is what planGenerations decided.
type generationPlan struct {
	current *generation   // the generation of the solution's spec
	create  bool          // current is new
	update  []*generation // whose annotations changed
	drop    []*generation // past what is kept
	// status lists the kept generations, newest first.
	status []v1alpha1.GenerationStatus
}

// planGenerations decides, purely, what the solution's generations gens
// become now that its status state is state (failMsg: why, when failed):
// which one its spec is (a new one, or the one already serving when a
// failed spec was put back), their outcomes, and which are kept: the
// newest keep that served, as many that failed, and the current one.
func planGenerations(sol *v1alpha1.Solution, gens []*generation, state, failMsg string, keep int, now time.Time) generationPlan {
	slices.SortFunc(gens, func(a, b *generation) int { return int(b.rec.Generation - a.rec.Generation) })
	spec := specJSON(sol.Spec)
	var p generationPlan
	for _, g := range gens {
		if g.solGen == sol.Generation && bytes.Equal(g.spec, spec) {
			p.current = g
			break
		}
	}
	if p.current == nil {
		// The spec of the generation still serving (or still starting)
		// again: a failed update was put back. It stays that generation.
		for _, g := range gens {
			if bytes.Equal(g.spec, spec) && (g.rec.Outcome == v1alpha1.OutcomeServing || g.rec.Outcome == v1alpha1.OutcomeDeploying) {
				p.current, g.solGen, g.dirty = g, sol.Generation, true
				break
			}
		}
	}
	if p.current == nil {
		n := int64(1)
		if len(gens) > 0 {
			n = gens[0].rec.Generation + 1
		}
		g := &generation{spec: spec, solGen: sol.Generation, rec: v1alpha1.GenerationStatus{
			Generation: n, Time: metav1.NewTime(now), Images: imagesOf(sol.Spec), Outcome: v1alpha1.OutcomeDeploying,
		}}
		if note, ok := deployNote(sol); ok {
			g.rec.DeployedBy, g.rec.RollbackOf = note.By, note.RollbackOf
		}
		p.current, p.create = g, true
		gens = append([]*generation{g}, gens...)
	}
	cur := p.current
	setOutcome := func(g *generation, o, reason string) {
		if g.rec.Outcome != o || g.rec.Reason != reason {
			g.rec.Outcome, g.rec.Reason, g.dirty = o, reason, true
		}
	}
	switch {
	case state == v1alpha1.StateRunning && cur.rec.Outcome != v1alpha1.OutcomeServing:
		setOutcome(cur, v1alpha1.OutcomeServing, "")
	case state == v1alpha1.StateFailed && cur.rec.Outcome == v1alpha1.OutcomeDeploying:
		setOutcome(cur, v1alpha1.OutcomeFailed, failMsg)
	}
	for _, g := range gens {
		switch {
		case g == cur:
		case g.rec.Outcome == v1alpha1.OutcomeDeploying:
			setOutcome(g, v1alpha1.OutcomeFailed, fmt.Sprintf("generation %d took its place before it served", cur.rec.Generation))
		case g.rec.Outcome == v1alpha1.OutcomeServing && cur.rec.Outcome == v1alpha1.OutcomeServing:
			setOutcome(g, v1alpha1.OutcomeReplaced, "")
		}
	}
	served, failed := 0, 0
	for _, g := range gens {
		kept := g == cur
		switch g.rec.Outcome {
		case v1alpha1.OutcomeServing, v1alpha1.OutcomeReplaced:
			kept = kept || served < keep
			served++
		default:
			kept = kept || failed < keep
			failed++
		}
		switch {
		case !kept:
			p.drop = append(p.drop, g)
		case g.dirty && g.rev != nil:
			p.update = append(p.update, g)
		}
		if kept {
			p.status = append(p.status, g.rec)
		}
	}
	return p
}

// deployNote reads the note aim's API wrote with the solution's spec; ok
// is false when there is none for its current generation.
func deployNote(sol *v1alpha1.Solution) (v1alpha1.DeployNote, bool) {
	var n v1alpha1.DeployNote
	a, ok := sol.Annotations[v1alpha1.AnnotationDeploy]
	if !ok || json.Unmarshal([]byte(a), &n) != nil || n.Generation != sol.Generation {
		return v1alpha1.DeployNote{}, false
	}
	return n, true
}

// recordGenerations keeps the solution's generations as ControllerRevisions
// and lists them in st. st's previous list stays when they cannot be
// written; the error says why.
func (r *Reconciler) recordGenerations(ctx context.Context, sol *v1alpha1.Solution, st *v1alpha1.SolutionStatus) error {
	st.Generations = sol.Status.Generations
	var l appsv1.ControllerRevisionList
	if err := r.client.List(ctx, &l, client.InNamespace(sol.Namespace), client.MatchingFields{indexSolution: sol.Name}); err != nil {
		return fmt.Errorf("listing the generations of %s: %w", sol.Name, err)
	}
	var gens []*generation
	for i := range l.Items {
		rev := &l.Items[i]
		if owner := metav1.GetControllerOf(rev); owner == nil || owner.UID != sol.UID {
			continue
		}
		if g, ok := readGeneration(rev); ok {
			gens = append(gens, g)
		}
	}
	failMsg := ""
	for _, c := range st.Conditions {
		if c.Type == v1alpha1.ConditionFailed {
			failMsg = c.Message
		}
	}
	p := planGenerations(sol, gens, st.State, failMsg, r.opts.KeepGenerations, r.now())
	cur := p.current
	if cur.rec.Outcome == v1alpha1.OutcomeServing && len(cur.rec.Digests) == 0 && (p.create || cur.dirty) {
		// Read once, as it starts to serve: the pods then run its images.
		if d := r.digests(ctx, sol, cur.rec.Images); len(d) > 0 {
			cur.rec.Digests, cur.dirty = d, true
			if cur.rev != nil && !slices.Contains(p.update, cur) {
				p.update = append(p.update, cur)
			}
			for i := range p.status {
				if p.status[i].Generation == cur.rec.Generation {
					p.status[i].Digests = d
				}
			}
		}
	}
	if p.create {
		rev := r.revision(sol, cur)
		if err := r.client.Create(ctx, rev); err != nil {
			// AlreadyExists: the cache had not seen it yet; look again.
			return fmt.Errorf("recording generation %d of %s: %w", cur.rec.Generation, sol.Name, err)
		}
		// The API server's time, as the next pass reads it.
		for i := range p.status {
			if p.status[i].Generation == cur.rec.Generation {
				p.status[i].Time = rev.CreationTimestamp
			}
		}
	}
	for _, g := range p.update {
		before := g.rev.DeepCopy()
		g.rev.Annotations = maps.Clone(g.rev.Annotations)
		if g.rev.Annotations == nil {
			g.rev.Annotations = map[string]string{}
		}
		maps.Copy(g.rev.Annotations, annotations(g))
		// On the version read: the API may have written its reason of a
		// failure meanwhile.
		if err := r.client.Patch(ctx, g.rev, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("recording what became of generation %d of %s: %w", g.rec.Generation, sol.Name, err)
		}
	}
	for _, g := range p.drop {
		if err := r.client.Delete(ctx, g.rev); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting generation %d of %s: %w", g.rec.Generation, sol.Name, err)
		}
	}
	st.Generations = p.status
	return nil
}

// revision is the ControllerRevision of a new generation.
func (r *Reconciler) revision(sol *v1alpha1.Solution, g *generation) *appsv1.ControllerRevision {
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name: v1alpha1.RevisionName(sol.Name, g.rec.Generation), Namespace: sol.Namespace,
			Labels:          solutionLabels(sol.Name),
			Annotations:     annotations(g),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sol, v1alpha1.GroupVersion.WithKind("Solution"))},
		},
		Revision: g.rec.Generation,
		Data:     runtime.RawExtension{Raw: g.spec},
	}
}

// annotations are what a revision's annotations say of g; the empty ones
// are written too, so that a patch clears them.
func annotations(g *generation) map[string]string {
	a := map[string]string{
		v1alpha1.AnnotationOutcome:            g.rec.Outcome,
		v1alpha1.AnnotationReason:             g.rec.Reason,
		v1alpha1.AnnotationDeployedBy:         g.rec.DeployedBy,
		v1alpha1.AnnotationSolutionGeneration: strconv.FormatInt(g.solGen, 10),
		v1alpha1.AnnotationRollbackOf:         "",
		v1alpha1.AnnotationDigests:            "",
	}
	if g.rec.RollbackOf != 0 {
		a[v1alpha1.AnnotationRollbackOf] = strconv.FormatInt(g.rec.RollbackOf, 10)
	}
	if len(g.rec.Digests) > 0 {
		b, _ := json.Marshal(g.rec.Digests)
		a[v1alpha1.AnnotationDigests] = string(b)
	}
	return a
}

// digests reads, from the solution's ready pods, the image each component
// runs as the node has it (imageID). A component none of whose pods is
// ready with its image is left out; the history then shows no digest.
func (r *Reconciler) digests(ctx context.Context, sol *v1alpha1.Solution, images map[string]string) map[string]string {
	var pods corev1.PodList
	if err := r.reader.List(ctx, &pods, client.InNamespace(sol.Namespace), client.MatchingLabels{v1alpha1.LabelSolution: sol.Name}); err != nil {
		if !apierrors.IsForbidden(err) {
			r.log.Warn("reading the digests of a solution's images", "solution", sol.Name, "err", err)
		}
		return nil
	}
	d := map[string]string{}
	for _, p := range pods.Items {
		comp := p.Labels[v1alpha1.LabelComponent]
		if p.DeletionTimestamp != nil || d[comp] != "" {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == comp && cs.Ready && cs.ImageID != "" && imageMatches(cs.Image, images[comp]) {
				d[comp] = cs.ImageID
			}
		}
	}
	return d
}

// imageMatches says whether a container status's image (which the
// runtime may have normalised, e.g. docker.io/library/x:1 for x:1) is ref.
func imageMatches(status, ref string) bool {
	if status == ref {
		return true
	}
	for _, p := range []string{"docker.io/library/", "docker.io/"} {
		if status == p+ref {
			return true
		}
	}
	return false
}
