package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	_ "modernc.org/sqlite" // the driver aim's store uses
)

// Suite case 6 of docs/security.md (issue 15): `aim serve` is SIGKILLed
// in the middle of a deploy, a wake with 200 requests held, and a
// rollback, then started again on the same data. Nothing may be lost,
// the engine must hold exactly the containers of the generation that
// serves, the database must be whole, and aim must say what became of
// what it was doing.
//
// The kill comes at points the test observes rather than after a sleep:
// a component that takes long to listen (the testserver's slow-start
// mode) holds the deploy, the wake or the rollback open while the test
// waits for the engine to show the new generation's containers and the
// gateway to count the held requests. The database, read after each kill,
// proves the kill came before aim finished.
func TestFaults(t *testing.T) {
	t.Run("deploy", faultDuringDeploy)
	t.Run("wake", faultDuringWake)
	t.Run("rollback", faultDuringRollback)
}

// interruptedWord is what aim's words for an interrupted deploy contain,
// in the history, the status and the log.
const interruptedWord = "interrupted when aim stopped"

// slowManifest is a one-component solution of the testserver with env.
func slowManifest(name, env string) string {
	return "name: " + name + "\ncomponents:\n  - name: web\n    image: " + TestImage + "\n    env: {" + env + "}\n"
}

// faultDuringDeploy kills aim while an update of flip (its new
// generation never answers) and the first deploy of fresh are both
// waiting for their containers, with calm serving beside them.
func faultDuringDeploy(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "calm", "--image", TestImage)
	a.MustCLI("deploy", "-q", writeSolution(t, slowManifest("flip", "GREETING: first"), nil))
	wantGreeting(t, a, "before the kill", "first")
	calm := a.Containers("calm")

	update := startCLI(t, a, "deploy", writeSolution(t, slowManifest("flip", "GREETING: second, MODE: slow-start, DELAY: 1h"), nil))
	first := startCLI(t, a, "deploy", writeSolution(t, slowManifest("fresh", "MODE: slow-start, DELAY: 1h"), nil))
	// Both new generations run, and fresh's trial replica beside its own.
	waitContainers(t, a, "the update's and the first deploy's containers and fresh's trial", func() bool {
		return len(runningOf(a.Containers("flip"), false)) == 2 && len(runningOf(a.Containers("fresh"), false)) == 1 &&
			len(runningOf(a.Containers("fresh"), true)) == 1
	})
	a.Kill()
	t.Logf("aim deploy flip after the kill: %s", update.wait())
	t.Logf("aim deploy fresh after the kill: %s", first.wait())

	db := openStore(t, a)
	flipGen := storedGeneration(t, db, "flip")
	newFlip := newestGeneration(t, db, "flip")
	freshGen := storedGeneration(t, db, "fresh")
	if got := outcomeIn(t, db, "flip", newFlip); newFlip == flipGen || got != "deploying" {
		t.Fatalf("at the kill flip's update (generation %d, %s) was not in flight: the kill came too late", newFlip, got)
	}
	if got := outcomeIn(t, db, "fresh", freshGen); got != "deploying" {
		t.Fatalf("at the kill fresh's first deploy was %s: the kill came too late", got)
	}
	db.Close()

	a.Start()
	waitState(t, a, "flip", "ready", time.Minute)
	wantSolutions(t, a, "calm", "flip", "fresh")

	// The update was undone: the first version serves, alone.
	wantGreeting(t, a, "after the restart", "first")
	wantContainers(t, a, "flip", flipGen, 1, true)
	gens := history(t, a, "flip")
	if gens[0].Generation != newFlip || gens[0].Outcome != "failed" || !strings.Contains(gens[0].Reason, interruptedWord) ||
		gens[1].Generation != flipGen || gens[1].Outcome != "serving" {
		t.Errorf("flip's history after the restart is %+v; want generation %d failed as %s and %d serving", gens, newFlip, interruptedWord, flipGen)
	}
	// The first deploy failed, saying so; its replica is stopped (kept for
	// aim logs), its trial gone.
	st := a.MustCLI("status", "fresh")
	if !strings.Contains(st, "State:       failed") || !strings.Contains(st, interruptedWord) {
		t.Errorf("aim status fresh after the restart:\n%s", st)
	}
	wantContainers(t, a, "fresh", freshGen, 1, false)
	if gens := history(t, a, "fresh"); gens[0].Outcome != "failed" || !strings.Contains(gens[0].Reason, interruptedWord) {
		t.Errorf("fresh's history after the restart is %+v", gens)
	}
	// calm was adopted as it ran.
	if now := a.Containers("calm"); len(now) != 1 || now[0].ID != calm[0].ID || now[0].State != "running" {
		t.Errorf("calm's containers were %v, are %v after the restart; want the same one running", ids(calm), ids(now))
	}
	if code, _ := a.Get("calm", "/whoami"); code != http.StatusOK {
		t.Errorf("calm answers %d after the restart", code)
	}
	wantLog(t, a, "flip", "fresh")

	// Both deploy again as if nothing had happened.
	a.MustCLI("deploy", "-q", writeSolution(t, slowManifest("flip", "GREETING: second"), nil))
	wantGreeting(t, a, "after deploying again", "second")
	a.MustCLI("deploy", "-q", writeSolution(t, slowManifest("fresh", "GREETING: fresh"), nil))
	if code, _ := a.Get("fresh", "/whoami"); code != http.StatusOK {
		t.Errorf("fresh answers %d after deploying again", code)
	}
	wantContainers(t, a, "flip", history(t, a, "flip")[0].Generation, 1, true)
	wantContainers(t, a, "fresh", history(t, a, "fresh")[0].Generation, 1, true)
}

// faultDuringWake kills aim while nap, which takes a few seconds to
// listen, wakes for 200 held requests.
func faultDuringWake(t *testing.T) {
	const held = 200
	a := StartAim(t)
	// Waking takes DELAY: the window the kill falls in.
	manifest := slowManifest("nap", "MODE: slow-start, DELAY: 8s") + "limits: {rps: 1000, burst: 1000}\n"
	a.MustCLI("deploy", "-q", "--skip-checks", writeSolution(t, manifest, nil))
	a.MustCLI("sleep", "nap")
	waitState(t, a, "nap", "sleeping", 30*time.Second)
	gen := history(t, a, "nap")[0].Generation

	tr := &http.Transport{MaxIdleConnsPerHost: held, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	type answer struct {
		code int
		body string
		err  error
	}
	answers := make([]answer, held)
	var wg sync.WaitGroup
	for i := range held {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/whoami", nil)
			req.Host = "nap.localhost"
			resp, err := c.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{code: resp.StatusCode, body: string(b), err: err}
		})
	}
	waitContainers(t, a, "the wake's container and the held requests", func() bool {
		return len(runningOf(a.Containers("nap"), false)) == 1 &&
			metricValue(a.Metrics(), `aim_requests_held_total{solution="nap"}`) == held
	})
	a.Kill()
	wg.Wait()

	db := openStore(t, a)
	if st := stateIn(t, db, "nap"); st != "sleeping" {
		t.Fatalf("at the kill the store says nap is %s: the kill came after the wake", st)
	}
	db.Close()

	// Each held request was cut off with its connection, or answered by
	// nap itself; none got another answer.
	var ok, cut int
	wrong := map[string]int{}
	for _, an := range answers {
		var w struct{ Solution string }
		switch {
		case an.err != nil:
			cut++
		case an.code == http.StatusOK && json.Unmarshal([]byte(an.body), &w) == nil && w.Solution == "nap":
			ok++
		default:
			wrong[fmt.Sprintf("%d %.60q", an.code, an.body)]++
		}
	}
	t.Logf("of %d requests held at the kill: %d answered by nap, %d cut off with their connection, %d answered otherwise %v",
		held, ok, cut, held-ok-cut, wrong)
	if len(wrong) > 0 {
		t.Errorf("held requests got answers that are not nap's: %v", wrong)
	}

	a.Start()
	// The wake died with aim: nap sleeps, its container stopped again.
	waitContainers(t, a, "nap's container stopped after the restart", func() bool {
		cs := a.Containers("nap")
		return len(cs) == 1 && len(runningOf(cs, false)) == 0
	})
	st := a.MustCLI("status", "nap")
	if !strings.Contains(st, "State:       sleeping") {
		t.Errorf("aim status nap after the restart:\n%s", st)
	}
	wantContainers(t, a, "nap", gen, 1, false)
	wantSolutions(t, a, "nap")
	// A new request wakes it as any wake does.
	code, body := a.Get("nap", "/whoami")
	t.Logf("a request after the restart: %d %.80q", code, body)
	if code != http.StatusOK || !strings.Contains(body, `"solution":"nap"`) {
		t.Errorf("a request after the restart got %d %q, want nap's answer", code, body)
	}
	wantContainers(t, a, "nap", gen, 1, true)
	if !strings.Contains(a.logs.String(), "stopping the containers of an interrupted wake") {
		t.Errorf("aim's log after the restart does not say the interrupted wake was stopped:\n%s", a.logs.String())
	}
}

// faultDuringRollback kills aim while a rollback to a first version that
// takes seconds to listen waits for it.
func faultDuringRollback(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--skip-checks", writeSolution(t, slowManifest("flip", "GREETING: first, MODE: slow-start, DELAY: 6s"), nil))
	a.MustCLI("deploy", "-q", writeSolution(t, slowManifest("flip", "GREETING: second"), nil))
	wantGreeting(t, a, "before the rollback", "second")
	gens := history(t, a, "flip")
	second, first := gens[0].Generation, gens[1].Generation

	rb := startCLI(t, a, "rollback", "flip")
	waitContainers(t, a, "the rollback's container", func() bool {
		for _, c := range runningOf(a.Containers("flip"), false) {
			if g := c.Labels["dev.aim.generation"]; g != strconv.FormatInt(first, 10) && g != strconv.FormatInt(second, 10) {
				return true
			}
		}
		return false
	})
	a.Kill()
	t.Logf("aim rollback flip after the kill: %s", rb.wait())

	db := openStore(t, a)
	rollback := newestGeneration(t, db, "flip")
	if got := outcomeIn(t, db, "flip", rollback); rollback <= second || got != "deploying" || storedGeneration(t, db, "flip") != second {
		t.Fatalf("at the kill the rollback (generation %d) was %s: the kill came too late", rollback, got)
	}
	db.Close()

	a.Start()
	waitState(t, a, "flip", "ready", time.Minute)
	wantSolutions(t, a, "flip")
	// Undone: the second version serves, alone.
	wantGreeting(t, a, "after the restart", "second")
	wantContainers(t, a, "flip", second, 1, true)
	gens = history(t, a, "flip")
	if gens[0].Generation != rollback || gens[0].RollbackOf != first || gens[0].Outcome != "failed" || !strings.Contains(gens[0].Reason, interruptedWord) ||
		gens[1].Outcome != "serving" || gens[2].Outcome != "replaced" {
		t.Errorf("flip's history after the restart is %+v; want the rollback failed as %s, %d serving, %d replaced", gens, interruptedWord, second, first)
	}
	hist := a.MustCLI("history", "flip")
	t.Logf("aim history flip after the restart:\n%s", hist)
	wantLog(t, a, "flip")

	// The rollback can be done again, and it is.
	out := a.MustCLI("rollback", "flip")
	t.Logf("aim rollback flip again: %s", strings.TrimSpace(out))
	wantGreeting(t, a, "after rolling back again", "first")
	wantContainers(t, a, "flip", history(t, a, "flip")[0].Generation, 1, true)
}

// cliRun is an aim command running in the background.
type cliRun struct {
	done chan struct{}
	out  bytes.Buffer
	err  error
}

// startCLI runs an aim command against a in the background.
func startCLI(t *testing.T, a *Aim, args ...string) *cliRun {
	t.Helper()
	r := &cliRun{done: make(chan struct{})}
	cmd := exec.Command(aimBin, args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+a.Token())
	cmd.Stdout, cmd.Stderr = &r.out, &r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	return r
}

// wait returns the command's end and last line.
func (r *cliRun) wait() string {
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		return "still running a minute after the kill"
	}
	lines := strings.Split(strings.TrimSpace(r.out.String()), "\n")
	return fmt.Sprintf("%v: %s", r.err, lines[len(lines)-1])
}

// waitContainers polls the engine until ready says the moment has come.
func waitContainers(t *testing.T, a *Aim, what string, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !ready() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 2 minutes for %s; aim's log:\n%s", what, a.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runningOf returns the running containers among cs: trials or not.
func runningOf(cs []container.Summary, trials bool) []container.Summary {
	var out []container.Summary
	for _, c := range cs {
		if c.State == "running" && (c.Labels["dev.aim.trial"] == "true") == trials {
			out = append(out, c)
		}
	}
	return out
}

// wantContainers checks that name comes to have exactly n containers in
// the engine, all of generation gen, replicas 0..n-1, all running or all
// stopped. aim stops and removes leftovers in the background after a
// start, so it waits a while for them.
func wantContainers(t *testing.T, a *Aim, name string, gen int64, n int, running bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		desc, ok := containersAre(a.Containers(name), gen, n, running)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s's containers are %v; want exactly %d of generation %d, running %v", name, desc, n, gen, running)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func containersAre(cs []container.Summary, gen int64, n int, running bool) ([]string, bool) {
	var desc, replicas []string
	ok := len(cs) == n
	for _, c := range cs {
		desc = append(desc, fmt.Sprintf("%s g%s r%s %s", strings.TrimPrefix(c.Names[0], "/"),
			c.Labels["dev.aim.generation"], c.Labels["dev.aim.replica"], c.State))
		replicas = append(replicas, c.Labels["dev.aim.replica"])
		ok = ok && c.Labels["dev.aim.generation"] == strconv.FormatInt(gen, 10) && (c.State == "running") == running
	}
	slices.Sort(replicas)
	for i := range n {
		ok = ok && i < len(replicas) && replicas[i] == strconv.Itoa(i)
	}
	return desc, ok
}

// wantSolutions checks that aim ls lists each of names.
func wantSolutions(t *testing.T, a *Aim, names ...string) {
	t.Helper()
	out := a.MustCLI("ls")
	for _, n := range names {
		if !strings.Contains(out, "\n"+n+" ") {
			t.Errorf("aim ls after the restart lacks %s:\n%s", n, out)
		}
	}
}

// wantLog checks that aim's log since the restart says each solution's
// deploy was interrupted.
func wantLog(t *testing.T, a *Aim, names ...string) {
	t.Helper()
	log := a.logs.String()
	for _, n := range names {
		found := false
		for line := range strings.SplitSeq(log, "\n") {
			found = found || strings.Contains(line, interruptedWord) && strings.Contains(line, "solution="+n)
		}
		if !found {
			t.Errorf("aim's log after the restart does not say %s's deploy was %s:\n%s", n, interruptedWord, log)
		}
	}
}

func ids(cs []container.Summary) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID[:12])
	}
	return out
}

// openStore opens the data directory's database read-only with the
// driver aim uses, and checks it is whole.
func openStore(t *testing.T, a *Aim) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(a.Data, "aim.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var res string
	if err := db.QueryRowContext(context.Background(), `PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("PRAGMA integrity_check after the kill: %q %v", res, err)
	}
	return db
}

func storedGeneration(t *testing.T, db *sql.DB, name string) int64 {
	t.Helper()
	var g int64
	if err := db.QueryRow(`SELECT generation FROM solutions WHERE name=?`, name).Scan(&g); err != nil {
		t.Fatalf("%s's generation in the store: %v", name, err)
	}
	return g
}

func stateIn(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var s string
	if err := db.QueryRow(`SELECT state FROM solutions WHERE name=?`, name).Scan(&s); err != nil {
		t.Fatalf("%s's state in the store: %v", name, err)
	}
	return s
}

func newestGeneration(t *testing.T, db *sql.DB, name string) int64 {
	t.Helper()
	var g int64
	if err := db.QueryRow(`SELECT MAX(generation) FROM generations WHERE solution=?`, name).Scan(&g); err != nil {
		t.Fatalf("%s's newest generation in the store: %v", name, err)
	}
	return g
}

func outcomeIn(t *testing.T, db *sql.DB, name string, gen int64) string {
	t.Helper()
	var o string
	if err := db.QueryRow(`SELECT outcome FROM generations WHERE solution=? AND generation=?`, name, gen).Scan(&o); err != nil {
		t.Fatalf("generation %d of %s in the store: %v", gen, name, err)
	}
	return o
}
