package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// flipManifest is a solution whose one component is built from dir web:
// each version's Dockerfile makes it answer / differently.
const flipManifest = "name: flip\ncomponents:\n  - name: web\n    build: web\n"

// The two versions, told apart by the greeting /whoami answers.
var (
	flipFirst  = map[string]string{"web/Dockerfile": "FROM " + TestImage + "\nENV GREETING=first\n"}
	flipSecond = map[string]string{"web/Dockerfile": "FROM " + TestImage + "\nENV GREETING=second\n"}
)

// AC5 of issue 14: deploy a first and a second version (two builds);
// `aim rollback` serves the first again without a build, printing the
// time it took; a rollback to a generation whose image is gone fails
// with a clear message and the current one goes on serving.
func TestRollback(t *testing.T) {
	a := StartAim(t)
	t.Cleanup(func() { removeImages(t, a) })
	a.MustCLI("deploy", "-q", writeSolution(t, flipManifest, flipFirst))
	wantGreeting(t, a, "the first version", "first")
	a.MustCLI("deploy", "-q", writeSolution(t, flipManifest, flipSecond))
	wantGreeting(t, a, "the second version", "second")

	gens := history(t, a, "flip")
	if len(gens) != 2 || gens[0].Outcome != "serving" || gens[1].Outcome != "replaced" {
		t.Fatalf("after two deploys the history is %+v, want the second serving and the first replaced", gens)
	}
	second, first := gens[0], gens[1]
	images := builtImages(t, a)
	if len(images) != 2 {
		t.Fatalf("aim's built images are %v, want one per version", images)
	}

	var out string
	tags := countImageEvents(t, a, "tag", func() { out = a.MustCLI("rollback", "flip") })
	t.Logf("aim rollback flip: %s", strings.TrimSpace(out))
	took := regexp.MustCompile(`^flip serves generation (\d+) again as generation (\d+), at \S+ \(took (\d+\.\d)s\)\n$`).FindStringSubmatch(out)
	if took == nil || took[1] != strconv.FormatInt(first.Generation, 10) {
		t.Fatalf("aim rollback printed %q, want that generation %d serves again and the time it took", out, first.Generation)
	}
	if s, _ := strconv.ParseFloat(took[3], 64); s > 30 {
		t.Errorf("the rollback took %ss", took[3])
	}
	wantGreeting(t, a, "after the rollback", "first")
	if after := builtImages(t, a); !slices.Equal(after, images) || tags != 0 {
		t.Errorf("the rollback built: images %v (were %v), %d tag events; want none new", after, images, tags)
	}
	gens = history(t, a, "flip")
	if gens[0].RollbackOf != first.Generation || gens[0].Images["web"] != first.Images["web"] || gens[0].Outcome != "serving" {
		t.Errorf("the newest generation is %+v, want a rollback to %d serving its image %s", gens[0], first.Generation, first.Images["web"])
	}

	// The second version's image goes (as when more versions than
	// --keep-generations came after it): rolling back to it fails.
	if _, err := docker.ImageRemove(context.Background(), second.Images["web"], image.RemoveOptions{Force: true}); err != nil {
		t.Fatalf("removing %s: %v", second.Images["web"], err)
	}
	to := strconv.FormatInt(second.Generation, 10)
	stdout, stderr, err := a.CLI("rollback", "flip", "--to", to)
	t.Logf("aim rollback flip --to %s: %v %s%s", to, err, stdout, stderr)
	want := "generation " + to + " cannot be served again: the image " + second.Images["web"] + " of component web is gone"
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("rolling back to a generation whose image is gone: %v\nstdout %s\nstderr %s\nwant a failure saying %q", err, stdout, stderr, want)
	}
	wantGreeting(t, a, "after the refused rollback", "first")
	if st := a.MustCLI("status", "flip"); !strings.Contains(st, "State:       ready") {
		t.Errorf("after the refused rollback:\n%s", st)
	}
	if now := history(t, a, "flip"); now[0].Generation != gens[0].Generation || now[0].Outcome != "serving" {
		t.Errorf("the refused rollback changed the history: newest %+v, want %+v serving", now[0], gens[0])
	}
}

// wantGreeting checks which version of flip answers.
func wantGreeting(t *testing.T, a *Aim, when, want string) {
	t.Helper()
	code, body := a.Get("flip", "/whoami")
	var w struct{ Greeting string }
	if code != http.StatusOK || json.Unmarshal([]byte(body), &w) != nil || w.Greeting != want {
		t.Fatalf("%s, flip's /whoami answers %d %q; want the greeting %q", when, code, body, want)
	}
}

type generation struct {
	Generation, RollbackOf int64
	Outcome, Reason        string
	Images                 map[string]string
}

// history is GET /api/v1/solutions/NAME/history, newest first.
func history(t *testing.T, a *Aim, name string) []generation {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/api/v1/solutions/"+name+"/history", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Generations []generation }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("history of %s: %s %v", name, resp.Status, err)
	}
	return body.Generations
}

// builtImages lists the tags of the images this server built, sorted.
func builtImages(t *testing.T, a *Aim) []string {
	t.Helper()
	list, err := docker.ImageList(context.Background(), image.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, img := range list {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, "aim.local/"+a.Prefix+"/") {
				tags = append(tags, tag)
			}
		}
	}
	slices.Sort(tags)
	return tags
}

// removeImages removes the images this server built and left.
func removeImages(t *testing.T, a *Aim) {
	for _, tag := range builtImages(t, a) {
		_, _ = docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
	}
}

// countImageEvents counts the engine's image events of one kind for the
// images this server names while f runs; every build ends in a tag event.
// (Other tests share the engine: their events are not counted.)
func countImageEvents(t *testing.T, a *Aim, kind string, f func()) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, errs := docker.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "image"), filters.Arg("event", kind))})
	var (
		mu sync.Mutex
		n  int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m.Actor.Attributes["name"], "aim.local/"+a.Prefix+"/") {
					mu.Lock()
					n++
					mu.Unlock()
				}
			case <-errs:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the subscription is in place
	f()
	time.Sleep(500 * time.Millisecond) // events arrive after the call
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return n
}
