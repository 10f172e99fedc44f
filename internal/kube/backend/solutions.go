// Package backend is the REST API's controller when aim runs on Kubernetes
// (`aim serve --runtime kubernetes`): it implements api.Controller on
// Solutions, as internal/controller does on Docker containers. Deploy
// writes a Solution and waits for the operator to make it ready; wake and
// sleep scale its Deployments; logs come from its pods; history and
// rollback use the generations the operator keeps.
package backend

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/kube"

	"github.com/aimhub/aim/internal/solution"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/spec"
)

var _ api.Controller = (*Solutions)(nil)

// Config configures Solutions. Zero values take the defaults
// named.
type Config struct {
	// Namespace holds the Solutions. Required.
	Namespace string
	// URL is a solution's address while its status names none yet.
	// Nil means http://<name>.localhost/.
	URL func(name string) string
	// StartTimeout bounds how long a deploy waits for the solution to be
	// ready. Zero means 2m.
	StartTimeout time.Duration
	// WakeTimeout bounds a wake or a sleep asked for through the API.
	// Zero means 2m.
	WakeTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Builds, when set, builds the components that name build: in the
	// cluster; nil refuses them.
	Builds *BuildConfig
	// Logins, when set, tries a registry login before it is kept; nil
	// keeps logins untried.
	Logins LoginChecker
}

// Solutions is the REST API's controller on Kubernetes: a deploy creates
// or updates a Solution and waits until the operator reports it ready;
// the status is the Solutions' status and pods'; logs are the pods' logs.
// It keeps no state: the Solutions are the record.
type Solutions struct {
	cfg    Config
	cache  cache.Cache
	client client.Client
	kc     kubernetes.Interface
	log    *slog.Logger
	builds *builds // nil: builds are refused
}

// New connects to the cluster; Run starts watching.
func New(rc *rest.Config, cfg Config) (*Solutions, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("kube solutions: a namespace is required")
	}
	if cfg.URL == nil {
		cfg.URL = func(name string) string { return "http://" + name + ".localhost/" }
	}
	cfg.StartTimeout = cmp.Or(cfg.StartTimeout, 2*time.Minute)
	cfg.WakeTimeout = cmp.Or(cfg.WakeTimeout, 2*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	scheme, err := kube.Scheme()
	if err != nil {
		return nil, err
	}
	c, err := cache.New(rc, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the cache: %w", err)
	}
	cl, err := client.New(rc, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("creating the client: %w", err)
	}
	s := &Solutions{cfg: cfg, cache: c, client: cl, kc: kc, log: cfg.Logger}
	if cfg.Builds != nil {
		s.builds = newBuilds(*cfg.Builds, kc, cfg.Logger)
	}
	return s, nil
}

// Run watches the Solutions until ctx ends; synced is called once the
// cache holds them all.
func (s *Solutions) Run(ctx context.Context, synced func()) error {
	if _, err := s.cache.GetInformer(ctx, &v1alpha1.Solution{}, cache.BlockUntilSynced(false)); err != nil {
		return fmt.Errorf("watching solutions: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.cache.Start(ctx) }()
	if !s.cache.WaitForCacheSync(ctx) {
		select {
		case err := <-errc:
			return fmt.Errorf("watching solutions in %s: %w", s.cfg.Namespace, err)
		default:
			return ctx.Err()
		}
	}
	if synced != nil {
		synced()
	}
	return <-errc
}

func (s *Solutions) key(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: s.cfg.Namespace, Name: name}
}

// get reads a solution from the cache; a missing one is ErrNotFound.
func (s *Solutions) get(ctx context.Context, name string) (*v1alpha1.Solution, error) {
	sol := &v1alpha1.Solution{}
	err := s.cache.Get(ctx, s.key(name), sol)
	if apierrors.IsNotFound(err) {
		// The watch may not have brought a Solution created a moment ago.
		err = s.client.Get(ctx, s.key(name), sol)
	}
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading solution %s: %w", name, err)
	}
	return sol, nil
}

// Get returns one solution with its pods' restarts and exit codes.
func (s *Solutions) Get(ctx context.Context, name string) (*solution.Info, error) {
	in, err := s.getInfo(ctx, name)
	return in, refused("reading solution "+name, err)
}

func (s *Solutions) getInfo(ctx context.Context, name string) (*solution.Info, error) {
	sol, err := s.get(ctx, name)
	if err != nil {
		return nil, err
	}
	in := s.info(sol)
	pods, err := s.kc.CoreV1().Pods(s.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + name})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s: %w", name, err)
	}
	for i := range in.Components {
		c := &in.Components[i]
		for _, p := range pods.Items {
			if p.Labels[v1alpha1.LabelComponent] != c.Name {
				continue
			}
			for _, cs := range p.Status.ContainerStatuses {
				c.Restarts += int(cs.RestartCount)
				if t := cs.LastTerminationState.Terminated; t != nil {
					c.LastExit = int(t.ExitCode)
				}
			}
		}
	}
	return in, nil
}

// List returns every solution, by name, from the cache.
func (s *Solutions) List(ctx context.Context) []*solution.Info {
	var l v1alpha1.SolutionList
	if err := s.cache.List(ctx, &l, client.InNamespace(s.cfg.Namespace)); err != nil {
		s.log.Warn("listing solutions", "err", err)
		return nil
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	out := make([]*solution.Info, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, s.info(&l.Items[i]))
	}
	return out
}

// info is a Solution as the API shows it.
func (s *Solutions) info(sol *v1alpha1.Solution) *solution.Info {
	st, reason := stateOf(sol)
	in := &solution.Info{
		Name: sol.Name, Title: cmp.Or(sol.Spec.Title, sol.Name), Description: sol.Spec.Description,
		Provider: spec.Provider{Name: sol.Spec.Provider.Name, Contact: sol.Spec.Provider.Contact},
		Tags:     sol.Spec.Tags, URL: s.cfg.URL(sol.Name), State: st, Reason: reason,
		Generation: generationOf(sol), CreatedAt: sol.CreationTimestamp.Time, UpdatedAt: sol.CreationTimestamp.Time,
		Owner: v1alpha1.OwnerOf(sol),
	}
	if u := sol.Status.URL; u != "" {
		in.URL = strings.TrimSuffix(u, "/") + "/"
	}
	for _, c := range sol.Status.Conditions {
		if c.LastTransitionTime.After(in.UpdatedAt) {
			in.UpdatedAt = c.LastTransitionTime.Time
		}
	}
	m, err := v1alpha1.ToManifest(sol.Name, sol.Spec)
	if err == nil {
		in.Manifest = m
		in.Visibility = solution.VisibilityOf(m)
	}
	for _, c := range sol.Spec.Components {
		ci := solution.ComponentInfo{Name: c.Name, Image: c.Image, Paths: c.Paths}
		if m != nil {
			mc, _ := m.Component(c.Name)
			ci.Public, ci.Paths = mc.IsPublic(), mc.Paths
		}
		for _, cs := range sol.Status.Components {
			if cs.Name == c.Name {
				ci.Replicas, ci.Running = int(cs.Replicas), int(cs.ReadyReplicas)
			}
		}
		in.Components = append(in.Components, ci)
	}
	return in
}

// generationOf is the solution's generation as aim history numbers it:
// the one serving, else the newest the operator recorded, else (none
// recorded yet) the object's metadata.generation.
func generationOf(sol *v1alpha1.Solution) int64 {
	if n := currentGeneration(sol.Status.Generations); n != 0 {
		return n
	}
	return sol.Generation
}

// stateOf maps a Solution's status to the API's states.
func stateOf(sol *v1alpha1.Solution) (solution.State, string) {
	if f := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionFailed); f != nil && f.Status == metav1.ConditionTrue {
		return solution.Failed, f.Message
	}
	ready := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionReady)
	switch sol.Status.State {
	case v1alpha1.StateRunning:
		return solution.Ready, ""
	case v1alpha1.StateSleeping:
		return solution.Sleeping, ""
	case "":
		return solution.Deploying, "waiting for the operator"
	}
	if ready == nil {
		return solution.Deploying, ""
	}
	if ready.Reason == "Waking" {
		return solution.Waking, ready.Message
	}
	return solution.Deploying, ready.Message
}

// Deploy creates or updates the solution's Solution and waits until the
// operator reports it ready, reporting its pods' progress. Components
// that build are built first by Jobs in the cluster (builds.go), when
// builds are on. A failed build or update leaves the previous version
// serving (a failed update puts the previous spec back).
func (s *Solutions) Deploy(ctx context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error) {
	in, err := s.deploy(ctx, req, progress)
	return in, refused("deploying solution "+req.Manifest.Name, err)
}

func (s *Solutions) deploy(ctx context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error) {
	if progress == nil {
		progress = func(string, string) {}
	}
	m := req.Manifest
	for _, c := range m.Components {
		if c.Build != "" && s.builds == nil {
			return nil, &solution.InputError{Msg: fmt.Sprintf(
				"component %s builds from the directory %q, but builds in the cluster are off in this installation (the chart's builds.enabled); build and push the image, then name it with image: in %s",
				c.Name, c.Build, spec.FileName)}
		}
	}
	if _, err := v1alpha1.ToManifest(m.Name, v1alpha1.FromManifest(m, placeholderImages(m))); err != nil {
		return nil, &solution.InputError{Msg: err.Error()}
	}
	owner := req.Owner
	var built map[string]builtImage
	cur, err := s.fresh(ctx, m.Name)
	if err == nil {
		owner = v1alpha1.OwnerOf(cur)
		_ = json.Unmarshal([]byte(cur.Annotations[annotationBuilds]), &built)
	}
	if req.Owner != "" && owner != req.Owner {
		// Another's first deploy claimed the name since this one was
		// authorized: refused before its pull Secret is written, as
		// apply would refuse it.
		return nil, &solution.OwnedError{Name: m.Name}
	}
	var images map[string]string
	extra := map[string]string{}
	if s.builds != nil {
		if err := s.builds.foreign(m); err != nil {
			return nil, err
		}
		imgs, record, err := s.builds.images(ctx, m, req.Contexts, built, progress)
		var ie *solution.InputError
		if err != nil && cur != nil && errors.As(err, &ie) {
			return nil, &solution.InputError{Msg: ie.Msg + "\n(the previous version keeps serving)"}
		}
		if err != nil {
			return nil, err
		}
		images = imgs
		if len(record) > 0 {
			b, _ := json.Marshal(record) // plain fields always marshal
			extra[annotationBuilds] = string(b)
		}
	}
	want := v1alpha1.FromManifest(m, images)
	versions, err := s.secretVersions(ctx, m, owner)
	if err != nil {
		return nil, err
	}
	want.SecretVersions = versions
	if err := s.pullSecret(ctx, m.Name, owner, &want); err != nil {
		return nil, err
	}
	note := v1alpha1.DeployNote{By: req.By, RollbackOf: req.RollbackOf}
	prev, gen, err := s.apply(ctx, m.Name, req.Owner, want, note, extra)
	if err != nil {
		return nil, err
	}
	if prev == nil {
		progress("", fmt.Sprintf("created Solution %s/%s", s.cfg.Namespace, m.Name))
	} else {
		progress("", fmt.Sprintf("updated Solution %s/%s (generation %d)", s.cfg.Namespace, m.Name, gen))
	}
	if err := s.waitReady(ctx, m, gen, progress); err != nil {
		s.markFailed(context.WithoutCancel(ctx), m.Name, gen, err.Error())
		if prev != nil {
			if _, _, rerr := s.apply(context.WithoutCancel(ctx), m.Name, req.Owner, *prev, v1alpha1.DeployNote{By: req.By}, nil); rerr != nil {
				return nil, fmt.Errorf("%w; putting the previous version back failed too: %v", err, rerr)
			}
			progress("", "put the previous version back; it keeps serving")
			return nil, fmt.Errorf("%w (the previous version keeps serving)", err)
		}
		return nil, err
	}
	progress("", "ready")
	return s.getInfo(ctx, m.Name)
}

// apply creates the Solution owned by owner or sets its spec, returning
// the previous spec (nil when created) and the generation to wait for. An
// update keeps the Solution's owner, and is refused when owner is set and
// is not it (see solution.DeployRequest.Owner). note goes with a spec
// that changes, for the generation the operator records of it; extra
// annotations are set as they are.
func (s *Solutions) apply(ctx context.Context, name, owner string, want v1alpha1.SolutionSpec, note v1alpha1.DeployNote, extra map[string]string) (*v1alpha1.SolutionSpec, int64, error) {
	for attempt := 0; ; attempt++ {
		cur := &v1alpha1.Solution{}
		err := s.client.Get(ctx, s.key(name), cur)
		if apierrors.IsNotFound(err) {
			sol := &v1alpha1.Solution{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.cfg.Namespace},
				Spec:       want,
			}
			sol.Spec.Owner = owner
			note.Generation = 1
			setNote(sol, note)
			setAnnotations(sol, extra)
			err = s.client.Create(ctx, sol, client.FieldOwner(kube.FieldManager))
			if apierrors.IsAlreadyExists(err) && attempt < 3 {
				continue
			}
			if err != nil {
				return nil, 0, createError(name, err)
			}
			return nil, sol.Generation, nil
		}
		if err != nil {
			return nil, 0, fmt.Errorf("reading solution %s: %w", name, err)
		}
		if !cur.DeletionTimestamp.IsZero() {
			return nil, 0, &solution.InputError{Msg: fmt.Sprintf("solution %s is being removed; deploy it again once it is gone", name)}
		}
		curOwner := v1alpha1.OwnerOf(cur)
		if owner != "" && curOwner != owner {
			return nil, 0, &solution.OwnedError{Name: name}
		}
		prev := cur.Spec.DeepCopy()
		prev.Owner = curOwner
		// A manifest does not say whose a solution is: an update keeps
		// the owner, as the store does on Docker (and moves one an
		// earlier aim kept in the annotation into the spec).
		want.Owner = curOwner
		if !equality.Semantic.DeepEqual(cur.Spec, want) {
			// The API server counts a change of spec as the next
			// generation; an unchanged one keeps the note it had.
			note.Generation = cur.Generation + 1
			setNote(cur, note)
		}
		cur.Spec = want
		setAnnotations(cur, extra)
		err = s.client.Update(ctx, cur, client.FieldOwner(kube.FieldManager))
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, 0, createError(name, err)
		}
		return prev, cur.Generation, nil
	}
}

func setAnnotations(sol *v1alpha1.Solution, extra map[string]string) {
	for k, v := range extra {
		if sol.Annotations == nil {
			sol.Annotations = map[string]string{}
		}
		sol.Annotations[k] = v
	}
}

// placeholderImages stand for the images builds will give, so that a
// manifest is checked as a Solution before anything builds.
func placeholderImages(m *spec.Manifest) map[string]string {
	imgs := map[string]string{}
	for _, c := range m.Components {
		if c.Build != "" {
			imgs[c.Name] = "registry.invalid/" + m.Name + "/" + c.Name + ":build"
		}
	}
	return imgs
}

func setNote(sol *v1alpha1.Solution, note v1alpha1.DeployNote) {
	b, _ := json.Marshal(note) // plain fields always marshal
	if sol.Annotations == nil {
		sol.Annotations = map[string]string{}
	}
	sol.Annotations[v1alpha1.AnnotationDeploy] = string(b)
}

// createError turns the API server's refusal of a spec (its schema's
// rules) into an input error.
func createError(name string, err error) error {
	if apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) {
		return &solution.InputError{Msg: fmt.Sprintf("the cluster refused solution %s: %v", name, err)}
	}
	return fmt.Errorf("writing solution %s: %w", name, err)
}

// fatalWaiting are waiting reasons that do not pass by themselves.
var fatalWaiting = []string{"ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff"}

// pullWaiting are the reasons of a failed pull, which the kubelet tries
// again (after 10 s, then 20 s, ...). A first failure may pass: a
// registry that hiccups, or a kubelet whose cache of the pod's pull
// Secrets has not synced yet and pulls without them (a 401 seen on a busy
// node), so a pull fails the deploy only after pullGrace.
var pullWaiting = []string{"ErrImagePull", "ImagePullBackOff"}

// pullGrace is long enough for the kubelet's first retry, and short
// against StartTimeout.
const pullGrace = 30 * time.Second

// pullFailures remembers since when each container has failed to pull.
type pullFailures map[string]time.Time

// failing says whether the pull of container c of pod p has failed for
// pullGrace by now, and forgets containers that pull again.
func (f pullFailures) failing(p *corev1.Pod, c string, reason string, now time.Time) bool {
	k := string(p.UID) + "/" + c
	if !slices.Contains(pullWaiting, reason) {
		delete(f, k)
		return false
	}
	since, ok := f[k]
	if !ok {
		f[k] = now
		return false
	}
	return now.Sub(since) >= pullGrace
}

// waitReady waits until the operator reports generation gen of the
// solution running. A pod that crashes, or whose image is missing, fails
// it at once (as on Docker), one whose pull keeps failing after
// pullGrace; otherwise it fails after StartTimeout.
func (s *Solutions) waitReady(ctx context.Context, m *spec.Manifest, gen int64, progress solution.Progress) error {
	name := m.Name
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	said := map[string]string{}
	say := func(comp, msg string) {
		if said[comp] != msg {
			said[comp] = msg
			progress(comp, msg)
		}
	}
	woke := false
	pulls := pullFailures{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		sol := &v1alpha1.Solution{}
		if err := s.client.Get(ctx, s.key(name), sol); err != nil {
			if ctx.Err() == nil {
				return fmt.Errorf("reading solution %s: %w", name, err)
			}
		} else if sol.Status.ObservedGeneration >= gen {
			if f := meta.FindStatusCondition(sol.Status.Conditions, v1alpha1.ConditionFailed); f != nil && f.Status == metav1.ConditionTrue && f.ObservedGeneration >= gen {
				return &solution.StartError{Msg: fmt.Sprintf("%s: %s", f.Reason, f.Message)}
			}
			switch sol.Status.State {
			case v1alpha1.StateRunning:
				return nil
			case v1alpha1.StateSleeping:
				// Updated while asleep: wake it, so that the new version
				// is seen to serve.
				if !woke {
					woke = true
					say("", "it was asleep; waking it")
					if err := kube.ScaleUp(ctx, s.kc, s.cfg.Namespace, name, kube.AwakeReplicas(m)); err != nil {
						return err
					}
				}
			}
		}
		pods, err := s.kc.CoreV1().Pods(s.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelSolution + "=" + name})
		if err == nil {
			for _, c := range m.Components {
				msg, fatal := componentProgress(pods.Items, c.Name, pulls, time.Now())
				say(c.Name, msg)
				if fatal {
					why := kube.Diagnose(context.WithoutCancel(ctx), s.kc, s.cfg.Namespace, name)
					return &solution.StartError{Msg: why + pullHint(why, c.Image)}
				}
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why := kube.Diagnose(context.WithoutCancel(ctx), s.kc, s.cfg.Namespace, name)
				return &solution.StartError{Msg: fmt.Sprintf("not ready after %s: %s", s.cfg.StartTimeout, why)}
			}
			return ctx.Err()
		}
	}
}

// componentProgress sums up a component's pods, e.g. "1/2 ready; pod x:
// ContainerCreating", and says whether one is failing for good (pulls
// remembers failed pulls across calls).
func componentProgress(pods []corev1.Pod, comp string, pulls pullFailures, now time.Time) (string, bool) {
	total, ready := 0, 0
	var notes []string
	fatal := false
	for i := range pods {
		p := &pods[i]
		if p.Labels[v1alpha1.LabelComponent] != comp || p.DeletionTimestamp != nil {
			continue
		}
		total++
		if kube.PodProblem(p) == "" {
			ready++
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				notes = append(notes, w.Reason)
				fatal = fatal || slices.Contains(fatalWaiting, w.Reason) || pulls.failing(p, cs.Name, w.Reason, now)
			} else if cs.State.Running != nil {
				notes = append(notes, "started")
			}
			if cs.RestartCount > 0 {
				fatal = true
			}
		}
		if len(p.Status.ContainerStatuses) == 0 {
			notes = append(notes, strings.ToLower(string(p.Status.Phase)))
		}
	}
	if total == 0 {
		return "no pod yet", false
	}
	msg := fmt.Sprintf("%d/%d ready", ready, total)
	if len(notes) > 0 {
		slices.Sort(notes)
		msg += ": " + strings.Join(slices.Compact(notes), ", ")
	}
	return msg, fatal
}

// Remove deletes the Solution and waits until it is gone; owner
// references remove its Deployments, Services and NetworkPolicies.
func (s *Solutions) Remove(ctx context.Context, name string) error {
	return refused("removing solution "+name, s.remove(ctx, name))
}

func (s *Solutions) remove(ctx context.Context, name string) error {
	sol := &v1alpha1.Solution{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.cfg.Namespace}}
	err := s.client.Delete(ctx, sol, client.PropagationPolicy(metav1.DeletePropagationForeground))
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("removing solution %s: %w", name, err)
	}
	if err := s.removeSecrets(ctx, name); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		err := s.client.Get(ctx, s.key(name), &v1alpha1.Solution{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("solution %s is still being removed: %w", name, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Wake scales a sleeping solution up and waits until it is running.
func (s *Solutions) Wake(ctx context.Context, name string) error {
	return refused("waking solution "+name, s.wake(ctx, name))
}

func (s *Solutions) wake(ctx context.Context, name string) error {
	sol, err := s.get(ctx, name)
	if err != nil {
		return err
	}
	m, err := v1alpha1.ToManifest(name, sol.Spec)
	if err != nil {
		return &solution.InputError{Msg: err.Error()}
	}
	if err := kube.ScaleUp(ctx, s.kc, s.cfg.Namespace, name, kube.AwakeReplicas(m)); err != nil {
		return err
	}
	err = s.waitState(ctx, name, v1alpha1.StateRunning)
	if errors.Is(err, context.DeadlineExceeded) {
		return &solution.WakeError{Msg: kube.Diagnose(context.WithoutCancel(ctx), s.kc, s.cfg.Namespace, name)}
	}
	return err
}

// Sleep scales every component of a solution to zero and waits until the
// operator reports it asleep; the next request wakes it.
func (s *Solutions) Sleep(ctx context.Context, name string) error {
	return refused("putting solution "+name+" to sleep", s.sleep(ctx, name))
}

func (s *Solutions) sleep(ctx context.Context, name string) error {
	if _, err := s.get(ctx, name); err != nil {
		return err
	}
	if err := kube.ScaleTo(ctx, s.kc, s.cfg.Namespace, name, 0, false); err != nil {
		return err
	}
	err := s.waitState(ctx, name, v1alpha1.StateSleeping)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("solution %s was scaled to 0 but is not reported asleep after %s: %w", name, s.cfg.WakeTimeout, err)
	}
	return err
}

// waitState waits up to WakeTimeout until the operator reports a solution
// in state. It reads the cache, which the API's answer is then read from,
// so that answer shows the new state. A timeout is
// context.DeadlineExceeded.
func (s *Solutions) waitState(ctx context.Context, name, state string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WakeTimeout)
	defer cancel()
	for {
		cur := &v1alpha1.Solution{}
		if err := s.cache.Get(ctx, s.key(name), cur); err == nil && cur.Status.State == state {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// refused marks the API server's refusal of aim's own service account
// (403 Forbidden: its Role lacks a permission) as such, so that the API
// answers it as a missing permission of the installation rather than an
// internal error. Any other error, and nil, pass unchanged.
func refused(action string, err error) error {
	if err != nil && apierrors.IsForbidden(err) {
		return &solution.ForbiddenError{Action: action, Err: err}
	}
	return err
}
