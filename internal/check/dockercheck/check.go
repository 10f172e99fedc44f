// Package dockercheck is `aim check`: it runs a solution's images on the
// local Docker engine, in isolation, and judges each rule of the packaging
// standard (internal/check) with evidence: what the process listens on,
// what GET / answers, what it wrote, how long it took to stop.
//
// Run starts its own containers on an internal network and removes them,
// and the network, when it returns, also when ctx is cancelled.
package dockercheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aimhub/aim/internal/check"
	"github.com/aimhub/aim/internal/runtime/docker"
	"github.com/aimhub/aim/internal/spec"
)

// Options configure Run. Exactly one of Dir and Image is set.
type Options struct {
	// Dir is a solution directory holding aim.yaml; components that name
	// a build directory are built (tagged aim-check/<solution>-<component>).
	Dir string
	// Image is an image to check as a one-component solution.
	Image string
	// StartTimeout is how long a component may take to answer on 8080.
	// Zero means 60s, aim serve's default.
	StartTimeout time.Duration
	// StopTimeout is how long a component may take to exit after SIGTERM.
	// Zero means 10s, the grace aim's runtime gives before SIGKILL.
	StopTimeout time.Duration
	// SlowStart is the start-up time above which startup-time warns. Zero
	// means 10s.
	SlowStart time.Duration
	// MaxImageSize is the image size above which image-size warns. Zero
	// means 2GiB.
	MaxImageSize int64
	// Defaults fill a manifest's unset resources. Zero means
	// spec.DefaultDefaults.
	Defaults spec.Defaults
	// Labels are added to every container and network the check creates,
	// beside LabelCheck and LabelSolution.
	Labels map[string]string
	// Progress receives a line per step (and the builder's output); nil
	// means silent.
	Progress func(string)
}

func (o *Options) fill() error {
	if (o.Dir == "") == (o.Image == "") {
		return errors.New("check: set exactly one of Dir and Image")
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.SlowStart <= 0 {
		o.SlowStart = 10 * time.Second
	}
	if o.MaxImageSize <= 0 {
		o.MaxImageSize = 2 << 30
	}
	if o.Defaults == (spec.Defaults{}) {
		o.Defaults = spec.DefaultDefaults
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	return nil
}

// imageManifest is the one-component solution an image is checked as.
func imageManifest(image string) *spec.Manifest {
	yes := true
	return &spec.Manifest{Name: "image", Components: []spec.Component{{Name: "web", Image: image, Public: &yes, Paths: []string{"/"}}}}
}

// Run checks a solution or an image and returns the report. An error means
// the check itself could not run (no engine, a build failed, ctx was
// cancelled); a solution that breaks rules is a report whose Failed is
// true. Everything Run starts is removed before it returns.
func Run(ctx context.Context, api API, eng Builder, o Options) (rep *check.Report, err error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	var m *spec.Manifest
	images := map[string]string{}
	if o.Image != "" {
		m = imageManifest(o.Image)
		images["web"] = o.Image
	} else {
		if m, err = spec.ReadFile(o.Dir); err != nil {
			return nil, err
		}
		dir := o.Dir
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		if images, err = buildImages(ctx, eng, m, dir, o.Progress); err != nil {
			return nil, err
		}
	}
	extra := map[string]string{LabelSolution: m.Name}
	for k, v := range o.Labels {
		extra[k] = v
	}
	s := &session{cli: api, id: newID(), extra: extra}
	defer func() {
		if cerr := s.cleanup(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up check %s: %w", s.id, cerr))
		}
	}()
	runs := make([]*compRun, len(m.Components))
	for i, c := range m.Components {
		ref := images[c.Name]
		if err := eng.EnsureImage(ctx, ref, nil); err != nil {
			return nil, fmt.Errorf("component %s: %w", c.Name, err)
		}
		img, err := s.cli.ImageInspect(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("component %s: inspecting image %q: %w", c.Name, ref, err)
		}
		runs[i] = &compRun{s: s, o: &o, m: m, comp: c, image: ref, imageID: img.ID, img: docker.ImageOf(img), imageSize: img.Size, hc: check.NewHTTPClient(), results: map[string]check.Result{}}
	}
	if err := s.createNetwork(ctx); err != nil {
		return nil, err
	}
	o.Progress(fmt.Sprintf("starting %d component(s) on network %s", len(runs), s.net))
	for _, r := range runs {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	// Each component starts, is probed and measured on its own; the
	// writable twins run alongside.
	var wg sync.WaitGroup
	errs := make([]error, 2*len(runs))
	for i, r := range runs {
		wg.Add(2)
		go func() { defer wg.Done(); errs[2*i] = r.probe(ctx) }()
		go func() { defer wg.Done(); errs[2*i+1] = r.probeWrites(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return nil, err
	}
	for _, r := range runs {
		r.set(r.writesLost())
		// A process that stopped on the read-only filesystem gets the
		// writable: line as its fix too.
		if res, ok := r.results["starts"]; ok && res.Status == check.Fail && r.writableFix != "" && r.exitCause == check.CauseReadOnly {
			res.Fix = "it wrote outside /tmp, which is read-only: " + r.writableFix
			r.set(res)
		}
	}
	rep = &check.Report{Solution: m.Name, Images: images}
	var targets []check.APITarget
	for _, r := range runs {
		if r.ready && r.comp.IsPublic() {
			targets = append(targets, check.APITarget{Comp: r.comp, Addr: r.addr(), Paths: r.comp.Paths, Root: r.root})
		}
	}
	var openapi check.Result
	if len(targets) > 0 {
		openapi, rep.OpenAPI = check.ProbeOpenAPI(ctx, runs[0].hc, targets)
	} else {
		openapi = check.NewResult("openapi", "", check.Skip, "no public component answered")
	}
	if len(m.Components) > 1 {
		for _, r := range runs {
			if !r.comp.IsPublic() {
				r.set(r.ifReady("siblings", func() check.Result { return check.ProbeSibling(ctx, r.hc, r.addr(), r.comp.Name) }))
			}
		}
	}
	o.Progress("sending SIGTERM")
	for _, r := range runs {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop(ctx) }()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seenImage := map[string]bool{}
	for _, r := range runs {
		rep.StartupTime = max(rep.StartupTime, check.Duration(r.readyAfter))
		rep.IdleMemory += r.memUsage
		if !seenImage[r.imageID] {
			seenImage[r.imageID] = true
			rep.ImageSize += r.imageSize
		}
	}
	rep.Results = assemble(runs, openapi, len(m.Components) > 1)
	return rep, nil
}

// assemble lists the results in rule order, then component order; a rule
// that applies to no component gets one skip line saying why.
func assemble(runs []*compRun, openapi check.Result, multi bool) []check.Result {
	var out []check.Result
	for _, rule := range check.Rules {
		n := len(out)
		if rule.ID == "openapi" {
			out = append(out, openapi)
			continue
		}
		for _, r := range runs {
			if res, ok := r.results[rule.ID]; ok {
				out = append(out, res)
			}
		}
		if len(out) > n {
			continue
		}
		why := "no public component serves /"
		switch rule.ID {
		case "siblings":
			why = "no private components"
			if !multi {
				why = "one component"
			}
		case "health":
			why = "no public component answered"
		}
		out = append(out, check.NewResult(rule.ID, "", check.Skip, why))
	}
	return out
}

// compRun is one component's run: its container, its writable twin and
// what was found.
type compRun struct {
	s         *session
	o         *Options
	m         *spec.Manifest
	comp      spec.Component
	image     string
	imageID   string
	img       docker.Image
	imageSize int64
	hc        *http.Client

	id, twinID string
	// startFailed is set when the engine could not run the command.
	startFailed *startFailure
	// imageTmp lists what the image has under /tmp; tmpWrites what the
	// process wrote there by the time it answered (tmpSeen: /tmp could be
	// read); outsideWrites what the writable twin wrote elsewhere.
	imageTmp      []string
	imageTmpMore  bool
	tmpWrites     []string
	tmpSeen       bool
	outsideWrites []string
	// writableFix is read-only-fs's fix when the twin wrote outside /tmp
	// (the writable: line to add), for starts to point at.
	writableFix string
	// exitCause is what the process said when it exited, if it did.
	exitCause  check.StartsCause
	started    time.Time
	ip         string
	pid        int
	ready      bool
	readyAfter time.Duration
	root       []byte // body of GET /
	memUsage   int64
	attempts   []netip.AddrPort // connection attempts beyond the network

	// readyAt is when the component met its readiness rule, zero when
	// waitReady could not tell (ProbeReadiness then probes it).
	readyAt time.Time

	mu      sync.Mutex
	results map[string]check.Result
}

func (r *compRun) set(res check.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results[res.ID] = res
}

func (r *compRun) addr() string { return fmt.Sprintf("%s:%d", r.ip, spec.Port) }

// notReady says why the rules that need the component ready are skipped.
func (r *compRun) notReady() string {
	if r.comp.Ready.Path != "" {
		return "it never answered 2xx at its ready.path " + r.comp.Ready.Path
	}
	return "it never answered on 8080"
}

// ifReady runs a probe of rule id only when the component answered.
func (r *compRun) ifReady(id string, probe func() check.Result) check.Result {
	if !r.ready {
		return check.NewResult(id, r.comp.Name, check.Skip, r.notReady())
	}
	return probe()
}

// start starts the component's container and its writable twin. A
// command the engine cannot run is a finding (startFailed), and then no
// twin runs.
func (r *compRun) start(ctx context.Context) error {
	cfg, host, nc := r.s.containerSpec(r.m, r.comp, r.image, r.img, r.o.Defaults, false)
	id, err := r.s.start(ctx, fmt.Sprintf("aim-check-%s-%s", r.s.id, r.comp.Name), cfg, host, nc, r.readImageTmp(ctx))
	r.id, r.started = id, time.Now()
	r.set(check.ImageTmp(r.comp.Name, r.img.WorkingDir, r.imageTmp, r.imageTmpMore))
	if sf := (*startFailure)(nil); errors.As(err, &sf) {
		r.startFailed = sf
		return nil
	}
	if err != nil {
		return fmt.Errorf("component %s: %w", r.comp.Name, err)
	}
	cfg, host, nc = r.s.containerSpec(r.m, r.comp, r.image, r.img, r.o.Defaults, true)
	r.twinID, err = r.s.start(ctx, fmt.Sprintf("aim-check-%s-%s-rw", r.s.id, r.comp.Name), cfg, host, nc, nil)
	if err != nil {
		return fmt.Errorf("component %s: %w", r.comp.Name, err)
	}
	return nil
}

// readImageTmp lists, in a created container, what the image has under
// /tmp, which the tmpfs hides once it starts.
func (r *compRun) readImageTmp(ctx context.Context) func(id string) {
	return func(id string) {
		files, more, err := docker.TmpFiles(ctx, r.s.cli, id, 5)
		if err != nil {
			r.o.Progress(fmt.Sprintf("%s: reading the image's /tmp: %v", r.comp.Name, err))
		}
		r.imageTmp, r.imageTmpMore = files, more
	}
}

// writesLost judges writes-lost once the probes are done.
func (r *compRun) writesLost() check.Result {
	if r.startFailed != nil {
		return check.NewResult("writes-lost", r.comp.Name, check.Skip, "it never started")
	}
	if !r.ready && len(r.outsideWrites) == 0 {
		return check.NewResult("writes-lost", r.comp.Name, check.Skip, "it never answered on 8080")
	}
	return check.WritesLost(r.comp.Name, r.outsideWrites, r.tmpWrites, r.tmpSeen)
}
