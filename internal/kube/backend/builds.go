package backend

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/aimhub/aim/internal/kube/buildgate"
	"github.com/aimhub/aim/internal/kube/kbuild"
	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// BuildConfig turns on builds in the cluster: a component with build:
// is built by a Job (internal/kube/kbuild) that pushes to the registry,
// and served by digest.
type BuildConfig struct {
	// Job is what every build Job shares (namespace, image, limits); its
	// Registry is the registry gate (GateAddr) as build pods reach it.
	Job kbuild.Options
	// Registry is the registry's host[:port] as this API reaches it: the
	// gate forwards there, and builds' images are there.
	Registry string
	// RegistryHTTP reaches Registry over plain HTTP (the chart's
	// in-cluster registry); otherwise HTTPS.
	RegistryHTTP bool
	// RegistryAuth is the Authorization header the gate sends Registry
	// (buildgate.DockerConfigAuth); empty sends none.
	RegistryAuth string
	// GateAddr is where this API listens for the registry gate (e.g.
	// :5001): never the API's own listener, which the gateway serves.
	GateAddr string
	// PullHost is the registry's host[:port] as the nodes pull from it
	// (the chart's registry.host); empty means Registry.
	PullHost string
	// APIURL is this API as build pods reach it, e.g.
	// http://aim-api.aim-system.svc; they fetch their context from
	// APIURL/api/v1/builds/<id>/context.
	APIURL string
	// TempDir keeps contexts until their build fetches them; empty means
	// os.TempDir().
	TempDir string
}

// ContextPath is the route build pods fetch their context from.
const ContextPath = "GET /api/v1/builds/{id}/context"

// annotationBuilds on a Solution records, per component, the hash of the
// context last built and the image it gave: an unchanged context is not
// built again.
const annotationBuilds = "aim.dev/builds"

type builtImage struct {
	Context string `json:"context"`
	Image   string `json:"image"`
}

// builds runs the build Jobs and serves their contexts, each once, to
// the holder of its token.
type builds struct {
	cfg BuildConfig
	kc  kubernetes.Interface
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]*pendingContext // by build ID
	running map[string]grant           // by build ID, while it runs
}

// grant is what a running build's gate token may touch.
type grant struct {
	token, repository string
}

type pendingContext struct {
	path  string
	size  int64
	token string
}

func newBuilds(cfg BuildConfig, kc kubernetes.Interface, log *slog.Logger) *builds {
	if cfg.PullHost == "" {
		cfg.PullHost = cfg.Registry
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	cfg.Job = cfg.Job.WithDefaults()
	return &builds{cfg: cfg, kc: kc, log: log, pending: map[string]*pendingContext{}, running: map[string]grant{}}
}

// BuildGate is the registry gate builds push through (buildgate): it
// holds the registry's credential and lets each running build's token
// push and pull only that build's repository. Nil when builds are off.
func (s *Solutions) BuildGate() (http.Handler, error) {
	if s.builds == nil {
		return nil, nil
	}
	scheme := "https://"
	if s.builds.cfg.RegistryHTTP {
		scheme = "http://"
	}
	return buildgate.New(buildgate.Config{
		Upstream:      scheme + s.builds.cfg.Registry,
		Authorization: s.builds.cfg.RegistryAuth,
		Root:          kbuild.RepositoryRoot,
		Grants:        s.builds,
		Logger:        s.builds.log,
	})
}

// Repository is buildgate.Grants: the repository of the running build
// whose gate token tok is. Every token is compared, in constant time.
func (b *builds) Repository(tok string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	repo, found := "", false
	for _, g := range b.running {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(g.token)) == 1 {
			repo, found = g.repository, true
		}
	}
	return repo, found
}

// BuildContexts serves build contexts to build pods (ContextPath): each
// once, to the bearer of its build's token. Nil when builds are off.
func (s *Solutions) BuildContexts() http.Handler {
	if s.builds == nil {
		return nil
	}
	return s.builds
}

func (b *builds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.mu.Lock()
	p := b.pending[id]
	ok := p != nil && tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(p.token)) == 1
	if ok {
		// Spent: a second fetch, by the build or anyone, gets nothing.
		delete(b.pending, id)
	}
	b.mu.Unlock()
	if !ok {
		http.Error(w, "no such build context", http.StatusNotFound)
		return
	}
	f, err := os.Open(p.path)
	if err != nil {
		http.Error(w, "the build context is gone", http.StatusGone)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Length", strconv.FormatInt(p.size, 10))
	if _, err := io.Copy(w, f); err != nil {
		b.log.Warn("serving a build context", "build", id, "err", err)
	}
}

// foreign refuses an image: component that names another solution's
// builds in the build registry (under aim/, where only builds push).
// Every solution's pods carry the registry's pull Secret, so without this
// one provider could run, by name, what another's build pushed. A
// rollback names the solution's own builds, which pass; what an admin
// pushed outside aim/ (shared base images) any solution may name.
func (b *builds) foreign(m *spec.Manifest) error {
	own := kbuild.RepositoryPath(m.Name, "")
	for _, c := range m.Components {
		if c.Image == "" {
			continue
		}
		host, path, err := registry.RepositoryOf(c.Image)
		if err != nil {
			continue // the deploy reports a malformed reference where it pulls
		}
		if (host == strings.ToLower(b.cfg.PullHost) || host == strings.ToLower(b.cfg.Registry)) &&
			strings.HasPrefix(path, kbuild.RepositoryRoot) && !strings.HasPrefix(path, own) {
			return &solution.InputError{Msg: fmt.Sprintf(
				"component %s: image %s is in this installation's build registry, and another solution's build: a solution may name only its own builds there (%s/%s…)",
				c.Name, c.Image, b.cfg.PullHost, own)}
		}
	}
	return nil
}

// images builds each component of m that builds, unless its context is
// the one last built (prev), and returns the images to run by component
// and the record to keep for the next deploy.
func (b *builds) images(ctx context.Context, m *spec.Manifest, contexts map[string]io.Reader, prev map[string]builtImage, progress solution.Progress) (map[string]string, map[string]builtImage, error) {
	images, record := map[string]string{}, map[string]builtImage{}
	for _, c := range m.Components {
		if c.Build == "" {
			continue
		}
		r := contexts[c.Name]
		if r == nil {
			return nil, nil, &solution.InputError{Msg: fmt.Sprintf("component %s builds from %q but no build context was uploaded", c.Name, c.Build)}
		}
		img, err := b.component(ctx, m.Name, c, r, prev[c.Name], progress)
		if err != nil {
			return nil, nil, err
		}
		images[c.Name] = img.Image
		record[c.Name] = img
	}
	return images, record, nil
}

func (b *builds) component(ctx context.Context, sol string, c spec.Component, r io.Reader, prev builtImage, progress solution.Progress) (builtImage, error) {
	path, size, sum, err := b.spool(c, r)
	if err != nil {
		return builtImage{}, err
	}
	defer os.Remove(path)
	if prev.Context == sum && prev.Image != "" {
		progress(c.Name, "context unchanged since its last build: using "+prev.Image)
		return prev, nil
	}
	id := buildID(sol, c.Name)
	progress(c.Name, fmt.Sprintf("building in the cluster (Job %s/aim-build-%s, context %d bytes)", b.cfg.Job.Namespace, id, size))
	start := time.Now()
	digest, err := b.run(ctx, sol, c, id, path, size, progress)
	if err != nil {
		return builtImage{}, err
	}
	img := b.cfg.PullHost + "/" + kbuild.RepositoryPath(sol, c.Name) + "@" + digest
	took := time.Since(start).Round(100 * time.Millisecond)
	b.log.Info("built in the cluster", "solution", sol, "component", c.Name, "image", img, "seconds", took.Seconds())
	progress(c.Name, fmt.Sprintf("built %s in %s", img, took))
	return builtImage{Context: sum, Image: img}, nil
}

// spool keeps the context in a file until its build fetches it, refusing
// one over the build limit, and hashes it with the Dockerfile's name.
func (b *builds) spool(c spec.Component, r io.Reader) (string, int64, string, error) {
	f, err := os.CreateTemp(b.cfg.TempDir, "aim-build-*.tar")
	if err != nil {
		return "", 0, "", fmt.Errorf("keeping the build context of %s: %w", c.Name, err)
	}
	defer f.Close()
	h := sha256.New()
	h.Write([]byte("dockerfile=" + c.Dockerfile + "\n"))
	max := b.cfg.Job.MaxContext
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = &solution.InputError{Msg: fmt.Sprintf("component %s: the build context (%s) is larger than the cluster's limit for builds of %d bytes; leave out what the image does not need (.dockerignore) or ask the operator to raise builds.maxContext", c.Name, c.Build, max)}
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, "", err
	}
	return f.Name(), n, hex.EncodeToString(h.Sum(nil)), nil
}

// buildID is readable in kubectl's listings and unique: a prefix of the
// solution's and the component's names and random hex.
func buildID(sol, comp string) string {
	var r [4]byte
	_, _ = rand.Read(r[:])
	cut := func(s string, n int) string { return strings.Trim(s[:min(len(s), n)], "-") }
	return cut(sol, 18) + "-" + cut(comp, 12) + "-" + hex.EncodeToString(r[:])
}

// newToken is a random 256-bit token, in hex.
func newToken() string {
	var t [32]byte
	_, _ = rand.Read(t[:])
	return hex.EncodeToString(t[:])
}

// run creates the build's Job and its token Secret, follows it to its end
// and returns the pushed image's digest. The build holds two tokens, both
// in that Secret and valid only while it runs: one for its context (spent
// when fetched) and one for the registry gate, scoped to its repository.
func (b *builds) run(ctx context.Context, sol string, c spec.Component, id, path string, size int64, progress solution.Progress) (string, error) {
	token, gateToken := newToken(), newToken()
	name := "aim-build-" + id
	kb := kbuild.Build{
		ID: id, Solution: sol, Component: c.Name, Dockerfile: c.Dockerfile,
		ContextURL:  strings.TrimSuffix(b.cfg.APIURL, "/") + "/api/v1/builds/" + id + "/context",
		TokenSecret: name,
	}
	job, err := b.cfg.Job.Job(kb)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.pending[id] = &pendingContext{path: path, size: size, token: token}
	b.running[id] = grant{token: gateToken, repository: kbuild.RepositoryPath(sol, c.Name)}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.pending, id)
		delete(b.running, id)
		b.mu.Unlock()
	}()
	ns := b.cfg.Job.Namespace
	job, err = b.kc.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("creating the build Job of %s: %w", c.Name, err)
	}
	// The Secret comes after the Job, owned by it, so that it goes with
	// the Job; the pod waits for it to mount.
	sec := b.cfg.Job.Secret(kb, job.Labels, token, gateToken)
	sec.OwnerReferences = []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID}}
	if _, err := b.kc.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
		b.deleteJob(job.Name)
		return "", fmt.Errorf("creating the token Secret of the build of %s: %w", c.Name, err)
	}
	defer func() {
		_ = b.kc.CoreV1().Secrets(ns).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{})
	}()
	return b.follow(ctx, c.Name, job, progress)
}

func (b *builds) deleteJob(name string) {
	bg := metav1.DeletePropagationBackground
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.kc.BatchV1().Jobs(b.cfg.Job.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg})
}

// buildFailed says why a build failed, with its log's last lines.
func buildFailed(comp, reason string, lines []string) string {
	msg := fmt.Sprintf("component %s: the build in the cluster failed: %s", comp, reason)
	if len(lines) > 0 {
		msg += "\nits last lines:\n  " + strings.Join(lines, "\n  ")
	}
	return msg
}

// follow streams the build container's log to progress until the Job
// ends, and reads the digest from the pod's termination message.
func (b *builds) follow(ctx context.Context, comp string, job *batchv1.Job, progress solution.Progress) (string, error) {
	ns := b.cfg.Job.Namespace
	sel := kbuild.LabelBuild + "=" + job.Labels[kbuild.LabelBuild]
	tail := &lastLines{n: 15}
	var streamed chan struct{}
	fail := func(reason string) (string, error) {
		b.deleteJob(job.Name)
		if streamed != nil {
			select {
			case <-streamed:
			case <-time.After(5 * time.Second):
			}
		}
		return "", &solution.InputError{Msg: buildFailed(comp, reason, tail.get())}
	}
	for {
		select {
		case <-ctx.Done():
			b.deleteJob(job.Name)
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
		pods, err := b.kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return "", fmt.Errorf("watching the build of %s: %w", comp, err)
		}
		var pod *corev1.Pod
		if len(pods.Items) > 0 {
			pod = &pods.Items[0]
		}
		if pod != nil {
			if reason := b.initFailed(ctx, pod, tail); reason != "" {
				return fail(reason)
			}
			if reason := stuck(pod); reason != "" {
				return fail(reason)
			}
			if streamed == nil && buildStarted(pod) {
				streamed = make(chan struct{})
				go b.stream(context.WithoutCancel(ctx), pod.Name, comp, tail, progress, streamed)
			}
		}
		j, err := b.kc.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("watching the build Job of %s: %w", comp, err)
		}
		done, failedReason := jobEnded(j)
		if !done {
			continue
		}
		if streamed != nil {
			select {
			case <-streamed:
			case <-time.After(10 * time.Second):
			}
		}
		if failedReason == "DeadlineExceeded" {
			return fail(fmt.Sprintf("it took longer than its time limit of %s (the chart's builds.timeout)", b.cfg.Job.Timeout))
		}
		return b.result(ctx, comp, sel, failedReason, tail, fail)
	}
}

// result reads the ended build container's state: the digest from its
// termination message, or why it failed.
func (b *builds) result(ctx context.Context, comp, sel, jobReason string, tail *lastLines, fail func(string) (string, error)) (string, error) {
	pods, err := b.kc.CoreV1().Pods(b.cfg.Job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return "", fmt.Errorf("reading the build of %s: %w", comp, err)
	}
	var term *corev1.ContainerStateTerminated
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "build" && cs.State.Terminated != nil {
				term = cs.State.Terminated
			}
		}
	}
	switch {
	case term == nil:
		return fail("its Job ended (" + jobReason + ") without a finished build container")
	case term.ExitCode == 0:
		var md map[string]any
		if err := json.Unmarshal([]byte(term.Message), &md); err != nil {
			return fail("the build container ended well but its termination message is not buildctl's metadata: " + err.Error())
		}
		d, _ := md["containerimage.digest"].(string)
		if !strings.HasPrefix(d, "sha256:") {
			return fail("buildctl's metadata names no image digest")
		}
		return d, nil
	case term.Reason == "OOMKilled" || strings.Contains(strings.Join(tail.get(), "\n"), "exit code: 137"):
		return fail(fmt.Sprintf("it ran out of memory: over its limit of %s (the chart's builds.resources.limits.memory)", b.cfg.Job.Memory.String()))
	default:
		if len(tail.get()) == 0 && term.Message != "" {
			tail.set(strings.Split(strings.TrimSpace(term.Message), "\n"))
		}
		return fail(fmt.Sprintf("the build exited with status %d; see the step that failed in its last lines", term.ExitCode))
	}
}

// initFailed says why fetching or unpacking the context failed, if it
// did, with that container's last lines in tail.
func (b *builds) initFailed(ctx context.Context, pod *corev1.Pod, tail *lastLines) string {
	for _, cs := range pod.Status.InitContainerStatuses {
		t := cs.State.Terminated
		if t == nil || t.ExitCode == 0 {
			continue
		}
		n := int64(10)
		if raw, err := b.kc.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: cs.Name, TailLines: &n}).DoRaw(ctx); err == nil {
			tail.set(strings.Split(strings.TrimSpace(string(raw)), "\n"))
		}
		if cs.Name == "fetch" && t.ExitCode == 63 {
			return fmt.Sprintf("its context is larger than the builds' limit of %d bytes", b.cfg.Job.MaxContext)
		}
		return fmt.Sprintf("its %s step exited with status %d", cs.Name, t.ExitCode)
	}
	return ""
}

// stuck says why a build pod cannot start, if it cannot.
func stuck(pod *corev1.Pod) string {
	for _, cs := range append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImageNeverPull", "InvalidImageName", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "CreateContainerError":
				return fmt.Sprintf("its %s container cannot start: %s: %s", cs.Name, w.Reason, w.Message)
			}
		}
	}
	return ""
}

func buildStarted(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == "build" && (cs.State.Running != nil || cs.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// jobEnded says whether the Job ended, and its failure's reason if it
// failed.
func jobEnded(j *batchv1.Job) (bool, string) {
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return true, ""
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			return true, c.Reason
		}
	}
	return false, ""
}

// stream sends the build container's log lines to progress, keeping the
// last ones in tail.
func (b *builds) stream(ctx context.Context, pod, comp string, tail *lastLines, progress solution.Progress, done chan struct{}) {
	defer close(done)
	rc, err := b.kc.CoreV1().Pods(b.cfg.Job.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: "build", Follow: true}).Stream(ctx)
	if err != nil {
		b.log.Warn("following a build's log", "pod", pod, "err", err)
		return
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		tail.add(line)
		progress(comp, line)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		b.log.Warn("following a build's log", "pod", pod, "err", err)
	}
}

// lastLines keeps the last n lines added.
type lastLines struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func (l *lastLines) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
	if len(l.lines) > l.n {
		l.lines = l.lines[len(l.lines)-l.n:]
	}
}

func (l *lastLines) set(lines []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = lines[max(0, len(lines)-l.n):]
}

func (l *lastLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
