package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const threeComponents = `name: three
title: Three Parts
components:
  - name: web
    build: web
    public: true
  - name: api
    image: ` + TestImage + `
    public: true
    paths: [/api]
  - name: engine
    image: ` + TestImage + `
    resources: {cpu: "0.5", memory: 64Mi}
`

// webDockerfile builds the web component from the test image, so that the
// build path (upload, classic builder) is exercised too.
const webDockerfile = "FROM " + TestImage + "\nENV GREETING=built\n"

type whoami struct {
	Component, Solution, Host, Path, XFF string
	UID                                  int
}

func getWhoami(t *testing.T, a *Aim, sol, path string) whoami {
	t.Helper()
	code, body := a.Get(sol, path)
	if code != 200 {
		t.Fatalf("GET %s%s = %d: %s", sol, path, code, body)
	}
	var w whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("GET %s%s: %v: %s", sol, path, err, body)
	}
	return w
}

// TestOneComponentLifecycle deploys, uses, inspects and removes a
// solution, with aim's state in SQLite (the default) and in PostgreSQL.
func TestOneComponentLifecycle(t *testing.T) {
	for _, db := range []struct {
		name  string
		start func(t *testing.T) *Aim
	}{
		{"sqlite", func(t *testing.T) *Aim { return StartAim(t) }},
		{"postgres", func(t *testing.T) *Aim { return StartAimOnPostgres(t) }},
	} {
		t.Run(db.name, func(t *testing.T) { oneComponentLifecycle(t, db.start(t)) })
	}
}

func oneComponentLifecycle(t *testing.T, a *Aim) {
	out := a.MustCLI("deploy", "-q", "--name", "hello", "--image", TestImage)
	if strings.TrimSpace(out) != "http://hello.localhost:"+strings.Split(a.Addr, ":")[1]+"/" {
		t.Errorf("deploy printed %q, want the solution's URL", out)
	}
	w := getWhoami(t, a, "hello", "/whoami")
	if w.Component != "web" || w.Solution != "hello" || w.Host != "hello.localhost" || w.XFF == "" {
		t.Errorf("the request did not arrive as proxied: %+v", w)
	}
	if w.UID != 65534 {
		t.Errorf("a root image ran as uid %d, want 65534", w.UID)
	}
	// The container's root filesystem is read-only and /tmp is writable.
	if code, body := a.Get("hello", "/write?path=/x"); code != 500 || !strings.Contains(body, "read-only file system") {
		t.Errorf("writing / = %d %q, want a read-only file system", code, body)
	}
	if code, body := a.Get("hello", "/write?path=/tmp/x"); code != 200 {
		t.Errorf("writing /tmp = %d %q", code, body)
	}
	checkEventStream(t, a, "hello")
	if ls := a.MustCLI("ls"); !strings.Contains(ls, "hello") || !strings.Contains(ls, "ready") {
		t.Errorf("ls:\n%s", ls)
	}
	st := a.MustCLI("status", "hello")
	for _, want := range []string{"State:       ready", "web", "1/1", TestImage} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	if logs := a.MustCLI("logs", "hello"); !strings.Contains(logs, "listening on :8080") {
		t.Errorf("logs:\n%s", logs)
	}
	checkSecurity(t, a, "hello")
	if a.Database != "" {
		checkStateInDatabase(t, a)
	}

	a.MustCLI("rm", "hello")
	if cs := a.Containers("hello"); len(cs) != 0 {
		t.Errorf("rm left %d containers", len(cs))
	}
	if ns := a.Networks(); len(ns) != 0 {
		t.Errorf("rm left networks: %v", ns)
	}
	if code, _ := a.Get("hello", "/"); code != http.StatusNotFound {
		t.Errorf("removed solution answers %d, want 404", code)
	}
}

// checkStateInDatabase checks that the state is in a's PostgreSQL and
// nowhere else: no SQLite file in --data, and an aim started on another,
// empty data directory and the same database knows the solution and the
// token, and serves it. The log names the database without its user.
func checkStateInDatabase(t *testing.T, a *Aim) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(a.Data, "aim.db")); !os.IsNotExist(err) {
		t.Errorf("aim serve --database made an SQLite file in --data (%v)", err)
	}
	u, err := url.Parse(a.Database)
	if err != nil {
		t.Fatal(err)
	}
	logs := a.logs.String()
	if want := "database=postgres://" + u.Host + u.Path; !strings.Contains(logs, want) {
		t.Errorf("the log does not say %s:\n%s", want, logs)
	}
	if strings.Contains(logs, a.Database) {
		t.Errorf("the log has the whole database URL %s", a.Database)
	}
	a.Kill()
	a.Data = filepath.Join(t.TempDir(), "other-data")
	a.Start()
	if st := a.MustCLI("status", "hello"); !strings.Contains(st, "State:       ready") {
		t.Errorf("after a restart on another data directory, status:\n%s", st)
	}
	if w := getWhoami(t, a, "hello", "/whoami"); w.Solution != "hello" {
		t.Errorf("after a restart on another data directory: %+v", w)
	}
}

// checkSecurity inspects the containers as the engine runs them.
func checkSecurity(t *testing.T, a *Aim, sol string) {
	t.Helper()
	for _, c := range a.Containers(sol) {
		info, err := docker.ContainerInspect(context.Background(), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		h := info.HostConfig
		if !h.ReadonlyRootfs || len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || h.Memory == 0 || h.NanoCPUs == 0 || h.PidsLimit == nil || *h.PidsLimit == 0 {
			t.Errorf("%s runs without the security defaults: readonly=%v capdrop=%v mem=%d cpu=%d pids=%v", c.Names[0], h.ReadonlyRootfs, h.CapDrop, h.Memory, h.NanoCPUs, h.PidsLimit)
		}
		if len(h.SecurityOpt) == 0 || h.SecurityOpt[0] != "no-new-privileges" {
			t.Errorf("%s: security options %v", c.Names[0], h.SecurityOpt)
		}
		if len(h.PortBindings) != 0 || len(h.Binds) != 0 {
			t.Errorf("%s publishes ports or mounts host paths: %v %v", c.Names[0], h.PortBindings, h.Binds)
		}
	}
}

func TestThreeComponentsPrivateAndIsolated(t *testing.T) {
	a := StartAim(t)
	dir := writeSolution(t, threeComponents, map[string]string{"web/Dockerfile": webDockerfile})
	a.MustCLI("deploy", "-q", dir)
	a.MustCLI("deploy", "-q", "--name", "other", "--image", TestImage)

	if w := getWhoami(t, a, "three", "/whoami"); w.Component != "web" {
		t.Errorf("/ routed to %q, want web", w.Component)
	}
	if w := getWhoami(t, a, "three", "/api/whoami"); w.Component != "api" || w.Path != "/api/whoami" {
		t.Errorf("/api routed to %+v, want api with the prefix kept", w)
	}
	// No path reaches the private engine through the gateway.
	for _, p := range []string{"/engine/whoami", "/whoami?c=engine", "/api/../engine/whoami", "/%65ngine/whoami"} {
		code, body := a.Get("three", p)
		if strings.Contains(body, `"component":"engine"`) {
			t.Errorf("GET %s reached the private engine (%d)", p, code)
		}
	}
	// Siblings reach the engine by name...
	if code, body := a.Get("three", "/api/dial?addr=engine:8080"); code != 200 {
		t.Errorf("api cannot reach its sibling engine: %d %s", code, body)
	}
	// ...but not another solution's containers, by name or by address.
	other := a.Containers("other")
	if len(other) != 1 {
		t.Fatalf("other has %d containers", len(other))
	}
	info, err := docker.ContainerInspect(context.Background(), other[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	for _, ep := range info.NetworkSettings.Networks {
		ip = ep.IPAddress
	}
	if ip == "" {
		t.Fatal("other has no address")
	}
	if code, body := a.Get("three", "/api/dial?addr="+ip+":8080"); code == 200 {
		// Say which networks hold that address, to tell an isolation
		// failure from an engine that handed out overlapping subnets.
		var where []string
		for _, n := range a.Networks() {
			ni, _ := docker.NetworkInspect(context.Background(), n.ID, network.InspectOptions{})
			for _, c := range ni.IPAM.Config {
				where = append(where, n.Name+"="+c.Subnet)
			}
		}
		t.Errorf("a component of one solution connected to another solution's container at %s: %s(networks: %v)", ip, body, where)
	}
	if code, body := a.Get("three", "/api/dial?addr=web:8080"); code != 200 {
		t.Errorf("sibling web unreachable: %s", body)
	}
	if code, _ := a.Get("other", "/dial?addr=engine:8080"); code == 200 {
		t.Error("another solution resolved and reached this solution's engine")
	}
	st := a.MustCLI("status", "three")
	for _, want := range []string{"engine", "no", "/api", "aim.local/" + a.Prefix + "/three-web:g"} {
		if !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	checkSecurity(t, a, "three")
	if logs := a.MustCLI("logs", "three", "engine"); !strings.Contains(logs, `component="engine"`) {
		t.Errorf("logs of engine:\n%s", logs)
	}
	a.MustCLI("rm", "three")
	if cs := a.Containers("three"); len(cs) != 0 {
		t.Errorf("rm left %d containers", len(cs))
	}
}

func containerNames(a *Aim) []string {
	var names []string
	for _, c := range a.Containers("") {
		names = append(names, c.Names[0]+"="+c.State)
	}
	sort.Strings(names)
	return names
}

func TestSIGKILLAndRestartAdopts(t *testing.T) {
	a := StartAim(t)
	dir := writeSolution(t, threeComponents, map[string]string{"web/Dockerfile": webDockerfile})
	a.MustCLI("deploy", "-q", dir)
	a.MustCLI("deploy", "-q", "--name", "hello", "--image", TestImage)
	before := containerNames(a)

	a.Kill()
	a.Start()

	// Serving again, from the same containers: none duplicated, none orphaned.
	if w := getWhoami(t, a, "three", "/api/whoami"); w.Component != "api" {
		t.Errorf("after restart: %+v", w)
	}
	if w := getWhoami(t, a, "hello", "/whoami"); w.Component != "web" {
		t.Errorf("after restart: %+v", w)
	}
	after := containerNames(a)
	if strings.Join(before, " ") != strings.Join(after, " ") {
		t.Errorf("containers changed across the restart:\nbefore %v\nafter  %v", before, after)
	}
	if ls := a.MustCLI("ls"); strings.Count(ls, "ready") != 2 {
		t.Errorf("ls after restart:\n%s", ls)
	}
}

func TestRestartRemovesOrphansAndRestoresMissing(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "keep", "--image", TestImage)
	a.Kill()
	ctx := context.Background()
	// While aim is down, the solution's container disappears, and a
	// container labelled as aim's for a solution aim never had appears.
	for _, c := range a.Containers("keep") {
		if err := docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	ghost, err := docker.ContainerCreate(ctx, &container.Config{Image: TestImage, Labels: map[string]string{
		"dev.aim.managed": a.Prefix, "dev.aim.solution": "ghost", "dev.aim.component": "web", "dev.aim.generation": "1", "dev.aim.replica": "0",
	}}, nil, nil, nil, a.Prefix+"-ghost-web-g1-0")
	if err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerStart(ctx, ghost.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	a.Start()
	if w := getWhoami(t, a, "keep", "/whoami"); w.Component != "web" {
		t.Errorf("missing containers were not restored: %+v", w)
	}
	if n := len(a.Containers("keep")); n != 1 {
		t.Errorf("keep has %d containers, want 1", n)
	}
	if n := len(a.Containers("ghost")); n != 0 {
		t.Errorf("the orphaned container was not removed")
	}
}

func TestUpdateReplacesOnlyWhenReady(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "upd", "--image", TestImage)
	first := getWhoami(t, a, "upd", "/whoami")

	bad := writeSolution(t, "name: upd\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env: {MODE: crash}\n", nil)
	_, errOut, err := a.CLI("deploy", "-q", bad)
	if err == nil || !strings.Contains(errOut, "previous one goes on serving") || !strings.Contains(errOut, "exited while starting with code 3") {
		t.Errorf("a failing update: err=%v\n%s", err, errOut)
	}
	if w := getWhoami(t, a, "upd", "/whoami"); w != first {
		t.Errorf("the old version stopped serving after a failed update: %+v", w)
	}
	if n := len(a.Containers("upd")); n != 1 {
		t.Errorf("a failed update left %d containers, want 1", n)
	}

	good := writeSolution(t, "name: upd\ntitle: Updated\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env: {GREETING: v2}\n", nil)
	a.MustCLI("deploy", "-q", good)
	if st := a.MustCLI("status", "upd"); !strings.Contains(st, "Updated") {
		t.Errorf("status after update:\n%s", st)
	}
	if n := len(a.Containers("upd")); n != 1 {
		t.Errorf("after the update %d containers, want 1", n)
	}
}

func TestBadInputIsExplainedAndHarmless(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "bystander", "--image", TestImage)

	for _, tc := range []struct {
		name     string
		manifest string
		args     []string
		want     []string
	}{
		{
			name:     "unknown field",
			manifest: "name: bad\ncomponents:\n  - name: web\n    image: x\n    prot: 8080\n",
			want:     []string{"aim.yaml:5", "components[0].prot", `unknown field "prot"`},
		},
		{
			name:     "bad type",
			manifest: "name: bad\ncomponents:\n  - name: web\n    image: x\n    resources: {memory: lots}\n",
			want:     []string{"aim.yaml:5", "components[0].resources.memory", `"lots" is not a size`},
		},
		{
			name:     "not a DNS label",
			manifest: "name: Bad_Name\ncomponents:\n  - name: web\n    image: x\n",
			want:     []string{"aim.yaml:1", "name", "not a DNS label"},
		},
		{
			name: "not a DNS label on the command line",
			args: []string{"deploy", "--name", "-x-", "--image", TestImage},
			want: []string{"not a DNS label"},
		},
		{
			name: "missing image",
			args: []string{"deploy", "--name", "noimage", "--image", "aim-test/does-not-exist:1"},
			want: []string{`image "aim-test/does-not-exist:1" is not on the engine and could not be pulled`},
		},
		{
			name:     "wrong port",
			manifest: "name: wrongport\ncomponents:\n  - name: web\n    image: " + TestImage + "\n    env: {MODE: wrong-port}\n",
			want:     []string{"nothing listens on port 8080 after", "the process listens on 5000"},
		},
		{
			name:     "crash at start",
			manifest: "name: crash\ncomponents:\n  - name: web\n    image: " + TestImage + "\n    env: {MODE: crash}\n",
			want:     []string{"exited while starting with code 3", "cannot load the model file"},
		},
		{
			name:     "missing build directory",
			manifest: "name: nobuild\ncomponents:\n  - name: web\n    build: web\n",
			want:     []string{"no Dockerfile"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if args == nil {
				args = []string{"deploy", "-q", writeSolution(t, tc.manifest, nil)}
			}
			_, errOut, err := a.CLI(args...)
			if err == nil {
				t.Fatalf("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error lacks %q:\n%s", w, errOut)
				}
			}
			if code, _ := a.Get("bystander", "/"); code != 200 {
				t.Errorf("the bystander solution answers %d", code)
			}
		})
	}
	// A solution that never answered is failed, with the reason, not hanging.
	st := a.MustCLI("status", "wrongport")
	if !strings.Contains(st, "State:       failed") || !strings.Contains(st, "listens on 5000") {
		t.Errorf("status of a failed solution:\n%s", st)
	}
	// And it leaves no restart loop behind.
	for _, c := range a.Containers("crash") {
		if c.State == "running" || c.State == "restarting" {
			t.Errorf("a failed solution's container is %s", c.State)
		}
	}
}

func TestAPIRequiresToken(t *testing.T) {
	a := StartAim(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodPut, "/api/v1/solutions/x"},
		{http.MethodDelete, "/api/v1/solutions/x"},
		{http.MethodPost, "/api/v1/solutions/x/sleep"},
		{http.MethodGet, "/api/v1/solutions/x/logs"},
	} {
		for _, tok := range []string{"", "Bearer aim_wrong"} {
			req, _ := http.NewRequest(tc.method, "http://"+a.Addr+tc.path, nil)
			if tok != "" {
				req.Header.Set("Authorization", tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || body.Error == "" {
				t.Errorf("%s %s with %q = %d %q, want 401 with a message", tc.method, tc.path, tok, resp.StatusCode, body.Error)
			}
		}
	}
	resp, err := http.Get("http://" + a.Addr + "/api/v1/solutions")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("listing needs no token: %v %v", err, resp)
	}
}

func TestCatalogAndUnknownSolution(t *testing.T) {
	a := StartAim(t)
	a.MustCLI("deploy", "-q", "--name", "hello", "--image", TestImage)
	resp, err := http.Get("http://" + a.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, resp.Body)
	if !strings.Contains(b.String(), `data-solution="hello"`) || !strings.Contains(b.String(), "ready") {
		t.Errorf("catalog lacks the solution:\n%s", b)
	}
	if code, body := a.Get("nosuch", "/"); code != 404 || !strings.Contains(body, "no solution called nosuch") {
		t.Errorf("unknown solution: %d %s", code, body)
	}
}

func TestDeployRunsFastChecks(t *testing.T) {
	a := StartAim(t)
	dir := writeSolution(t, "name: noroot\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env: {MODE: no-root}\n", nil)
	_, errOut, err := a.CLI("deploy", "-q", dir)
	if err == nil || !strings.Contains(errOut, "does not follow the packaging standard") || !strings.Contains(errOut, "root-html") || !strings.Contains(errOut, "404") {
		t.Fatalf("a solution without a root page was deployed or not explained: %v\n%s", err, errOut)
	}
	a.MustCLI("deploy", "-q", "--skip-checks", dir)
	if st := a.MustCLI("status", "noroot"); !strings.Contains(st, "skipped at deploy") || !strings.Contains(st, "ready") {
		t.Errorf("status after --skip-checks:\n%s", st)
	}
	// A solution that offers an OpenAPI document gets a link in the catalog.
	a.MustCLI("deploy", "-q", writeSolution(t, "name: withapi\ncomponents:\n  - name: web\n    image: "+TestImage+"\n    env: {RECOMMENDED: \"1\"}\n", nil))
	resp, err := http.Get("http://" + a.Addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `class="openapi" href="http://withapi.localhost:`) {
		t.Errorf("the catalog has no OpenAPI link for withapi")
	}
}

// checkEventStream reads the first event of a stream that lasts 100 s: it
// arrives only if the gateway passes events on as they are written.
func checkEventStream(t *testing.T, a *Aim, sol string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr+"/sse?n=1000", nil)
	req.Host = sol + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("event stream: %v", err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("event stream Content-Type %q", ct)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Errorf("the first event did not arrive while the stream was open: %q %v", line, err)
	}
}
