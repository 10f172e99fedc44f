package client_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	pngenc "image/png"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/client"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/testlog"
)

// fakeCtl is the controller behind the real API handler, so that the
// client is tested against the routes, the error bodies and the deploy
// stream the server has.
type fakeCtl struct {
	mu   sync.Mutex
	sols map[string]*solution.Info

	// deployErr fails deploys after their progress; wakeErr fails wakes.
	deployErr, wakeErr error
	// What the last deploy and logs call received.
	deployed   solution.DeployRequest
	files      map[string][]string // tar entries by component
	logsComp   string
	logsOpts   runtime.LogOptions
	logsCalled bool
}

var _ api.Controller = (*fakeCtl)(nil)

func newFakeCtl() *fakeCtl {
	return &fakeCtl{sols: map[string]*solution.Info{
		"hello": {Name: "hello", Title: "Hello", State: solution.Ready, Generation: 3, URL: "http://hello.localhost", Manifest: &spec.Manifest{Name: "hello"}},
		"other": {Name: "other", Title: "Other", State: solution.Sleeping, Generation: 1, Manifest: &spec.Manifest{Name: "other"}},
	}}
}

func (f *fakeCtl) Deploy(_ context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error) {
	files := map[string][]string{}
	for comp, r := range req.Contexts {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			files[comp] = append(files[comp], h.Name)
		}
		slices.Sort(files[comp])
	}
	f.mu.Lock()
	f.deployed, f.files = req, files
	f.mu.Unlock()
	progress("web", "building aim.local/aim/hello-web:g4")
	progress("", "starting containers")
	if f.deployErr != nil {
		return nil, f.deployErr
	}
	info := &solution.Info{Name: req.Manifest.Name, State: solution.Ready, Generation: 4, SkipChecks: req.SkipChecks, Manifest: req.Manifest, Owner: req.Owner}
	f.mu.Lock()
	f.sols[info.Name] = info
	f.mu.Unlock()
	return info, nil
}

func (f *fakeCtl) Get(_ context.Context, name string) (*solution.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.sols[name]
	if !ok {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	c := *info
	return &c, nil
}

func (f *fakeCtl) List(context.Context) []*solution.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*solution.Info
	for _, n := range slices.Sorted(maps.Keys(f.sols)) {
		out = append(out, f.sols[n])
	}
	return out
}

func (f *fakeCtl) Remove(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sols[name]; !ok {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	delete(f.sols, name)
	return nil
}

func (f *fakeCtl) Logs(_ context.Context, name, component string, opts runtime.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sols[name]; !ok {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	f.logsComp, f.logsOpts, f.logsCalled = component, opts, true
	return io.NopCloser(strings.NewReader("web | listening on :8080\nweb | GET / 200\n")), nil
}

func (f *fakeCtl) setState(name string, st solution.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.sols[name]
	if !ok {
		return fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	info.State = st
	return nil
}

func (f *fakeCtl) Wake(_ context.Context, name string) error {
	if f.wakeErr != nil {
		return f.wakeErr
	}
	return f.setState(name, solution.Ready)
}

func (f *fakeCtl) Sleep(_ context.Context, name string) error {
	return f.setState(name, solution.Sleeping)
}

// token, in a case, stands for the admin token of the store serve makes.
const token = "the admin's token"

// serve starts the real API on ctl and a real store, and returns it with
// a function that turns a case's token into the secret to send.
func serve(t *testing.T, ctl *fakeCtl) (*httptest.Server, func(string) string) {
	t.Helper()
	srv, secret, _ := serveStore(t, ctl)
	return srv, secret
}

// serveStore is serve that also returns the store.
func serveStore(t *testing.T, ctl *fakeCtl) (*httptest.Server, func(string) string, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	admin, _, err := st.CreateToken(context.Background(), store.Token{Name: "admin", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{TempDir: t.TempDir(), Logger: testlog.Logger(t, slog.LevelDebug)}, ctl, st)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, func(tok string) string {
		if tok == token {
			return admin
		}
		return tok
	}, st
}

// wantAPIError checks that err is the API's answer with status and a
// message that contains msg.
func wantAPIError(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %#v, want a *client.Error", err)
	}
	if ae.Status != status || !strings.Contains(ae.Message, msg) {
		t.Errorf("err = %d %q, want %d with %q", ae.Status, ae.Message, status, msg)
	}
}

func TestCalls(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		token string
		// ctl prepares the controller.
		ctl func(*fakeCtl)
		// call makes the call and checks what it returned; err is
		// checked against status and msg.
		call   func(t *testing.T, c *client.Client, ctl *fakeCtl) error
		status int // 0: no error
		msg    string
	}{{
		name: "list",
		call: func(t *testing.T, c *client.Client, _ *fakeCtl) error {
			l, err := c.List(ctx)
			if err == nil && (len(l) != 2 || l[0].Name != "hello" || l[1].Name != "other" || l[1].State != solution.Sleeping) {
				t.Errorf("List = %+v", l)
			}
			return err
		},
	}, {
		name: "get",
		call: func(t *testing.T, c *client.Client, _ *fakeCtl) error {
			info, err := c.Get(ctx, "hello")
			if err == nil && (info.Title != "Hello" || info.Generation != 3 || info.URL != "http://hello.localhost") {
				t.Errorf("Get = %+v", info)
			}
			return err
		},
	}, {
		name: "get unknown",
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Get(ctx, "nope")
			return err
		},
		status: http.StatusNotFound, msg: "solution nope: not found",
	}, {
		name: "wake", token: token,
		call: func(t *testing.T, c *client.Client, _ *fakeCtl) error {
			info, err := c.Post(ctx, "other", "wake")
			if err == nil && info.State != solution.Ready {
				t.Errorf("Post wake = %+v, want ready", info)
			}
			return err
		},
	}, {
		name: "sleep", token: token,
		call: func(t *testing.T, c *client.Client, _ *fakeCtl) error {
			info, err := c.Post(ctx, "hello", "sleep")
			if err == nil && info.State != solution.Sleeping {
				t.Errorf("Post sleep = %+v, want sleeping", info)
			}
			return err
		},
	}, {
		name: "wake that fails", token: token,
		ctl: func(f *fakeCtl) { f.wakeErr = &solution.WakeError{Msg: "component web exited with code 1"} },
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Post(ctx, "other", "wake")
			return err
		},
		status: http.StatusGatewayTimeout, msg: "the solution did not become ready: component web exited with code 1",
	}, {
		name: "an action the API lacks", token: token,
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Post(ctx, "hello", "explode")
			return err
		},
		status: http.StatusNotFound, msg: "no such API endpoint: POST /api/v1/solutions/hello/explode",
	}, {
		name: "remove", token: token,
		call: func(t *testing.T, c *client.Client, ctl *fakeCtl) error {
			_, err := c.Remove(ctx, "hello", false)
			if _, gone := ctl.Get(ctx, "hello"); err == nil && gone == nil {
				t.Error("hello is still there")
			}
			return err
		},
	}, {
		name: "remove unknown", token: token,
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Remove(ctx, "nope", false)
			return err
		},
		status: http.StatusNotFound, msg: "solution nope: not found",
	}, {
		name: "remove without a token",
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Remove(ctx, "hello", false)
			return err
		},
		status: http.StatusUnauthorized, msg: "removing solution hello needs the token of the provider it belongs to, or an admin token; the request carried none",
	}, {
		name: "remove with a wrong token", token: "guess",
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			_, err := c.Remove(ctx, "hello", false)
			return err
		},
		status: http.StatusUnauthorized, msg: "the API token is unknown to this aim",
	}, {
		name: "logs", token: token,
		call: func(t *testing.T, c *client.Client, ctl *fakeCtl) error {
			var b bytes.Buffer
			err := c.Logs(ctx, "hello", "web", true, 20, &b)
			if b.String() != "web | listening on :8080\nweb | GET / 200\n" {
				t.Errorf("logs = %q", b.String())
			}
			if ctl.logsComp != "web" || ctl.logsOpts != (runtime.LogOptions{Follow: true, Tail: 20}) {
				t.Errorf("the server was asked for %q with %+v", ctl.logsComp, ctl.logsOpts)
			}
			return err
		},
	}, {
		name: "logs of every component", token: token,
		call: func(t *testing.T, c *client.Client, ctl *fakeCtl) error {
			err := c.Logs(ctx, "hello", "", false, 0, io.Discard)
			if !ctl.logsCalled || ctl.logsComp != "" || ctl.logsOpts != (runtime.LogOptions{}) {
				t.Errorf("the server was asked for %q with %+v", ctl.logsComp, ctl.logsOpts)
			}
			return err
		},
	}, {
		name: "logs without a token",
		call: func(_ *testing.T, c *client.Client, _ *fakeCtl) error {
			return c.Logs(ctx, "hello", "", false, 0, io.Discard)
		},
		status: http.StatusUnauthorized, msg: "reading the logs of solution hello needs the token of the provider it belongs to, or an admin token",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeCtl()
			if c.ctl != nil {
				c.ctl(ctl)
			}
			srv, secret := serve(t, ctl)
			err := c.call(t, client.New(srv.URL+"/", secret(c.token)), ctl)
			if c.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantAPIError(t, err, c.status, c.msg)
			if c.status == http.StatusUnauthorized && !strings.HasSuffix(err.Error(), "(set --token or AIM_TOKEN)") {
				t.Errorf("a 401 says %q; it should say how to pass a token", err)
			}
		})
	}
}

// buildDir is a component's build directory.
func buildDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": "FROM scratch\nCOPY app /app\n", "app": "binary"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDeploy(t *testing.T) {
	const good = "name: hello\ncomponents:\n  - name: web\n    build: web\n"
	// Two problems, each located by line and field.
	bad := []byte("name: Hello_World\ncomponents:\n  - name: web\n    image: x\n    build: y\n")
	_, parseErr := spec.Parse(spec.FileName, bad)
	if parseErr == nil || !strings.Contains(parseErr.Error(), "aim.yaml:1: name: ") || !strings.Contains(parseErr.Error(), "\naim.yaml:3: components[0]: ") {
		t.Fatalf("the bad manifest's problems are %v, want one on line 1 and one on line 3", parseErr)
	}
	cases := []struct {
		name       string
		token      string
		manifest   []byte
		skipChecks bool
		deployErr  error
		// status and msg: the error wanted, when status is set.
		status int
		msg    string
		// streamErr is the error wanted from the stream.
		streamErr string
	}{
		{name: "progress then the result", token: token, manifest: []byte(good)},
		{name: "with checks skipped", token: token, manifest: []byte(good), skipChecks: true},
		{name: "a deploy that fails", token: token, manifest: []byte(good),
			deployErr: &solution.StartError{Msg: "component web exited while starting with code 3"},
			streamErr: "component web exited while starting with code 3"},
		{name: "a manifest with located problems", token: token, manifest: bad,
			status: http.StatusUnprocessableEntity, msg: parseErr.Error()},
		{name: "another solution's manifest", token: token, manifest: []byte(strings.Replace(good, "hello", "other", 1)),
			status: http.StatusBadRequest, msg: `the URL names solution "hello" but the manifest names "other"`},
		{name: "no token", manifest: []byte(good),
			status: http.StatusUnauthorized, msg: "deploying solution hello needs a provider or an admin token; the request carried none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeCtl()
			ctl.deployErr = c.deployErr
			srv, secret := serve(t, ctl)
			var events []api.Event
			info, err := client.New(srv.URL, secret(c.token)).Deploy(context.Background(), client.DeployRequest{
				Name: "hello", Manifest: c.manifest, Contexts: map[string]string{"web": buildDir(t)}, SkipChecks: c.skipChecks,
			}, func(e api.Event) { events = append(events, e) })
			switch {
			case c.status != 0:
				wantAPIError(t, err, c.status, c.msg)
				if len(events) != 0 {
					t.Errorf("events %+v for a refused upload", events)
				}
				return
			case c.streamErr != "":
				if err == nil || err.Error() != c.streamErr {
					t.Fatalf("Deploy = %v, want %q", err, c.streamErr)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if info.Name != "hello" || info.Generation != 4 || info.SkipChecks != c.skipChecks {
					t.Errorf("result = %+v", info)
				}
			}
			var got []string
			for _, e := range events {
				got = append(got, e.Component+": "+e.Message)
				if e.Time.IsZero() {
					t.Errorf("event %+v has no time", e)
				}
			}
			if want := []string{"web: building aim.local/aim/hello-web:g4", ": starting containers"}; !slices.Equal(got, want) {
				t.Errorf("events = %q, want %q", got, want)
			}
			if ctl.deployed.SkipChecks != c.skipChecks {
				t.Errorf("the server got skipChecks %v", ctl.deployed.SkipChecks)
			}
			if files := ctl.files["web"]; !slices.Equal(files, []string{"Dockerfile", "app"}) {
				t.Errorf("the server got a build context of %q, want the Dockerfile and app", files)
			}
		})
	}
}

// TestDeployThumbnail: the thumbnail the manifest names goes up with the
// deploy and is kept once the deploy served; one too large, or not an
// image, is refused before anything is deployed or kept (AC6 of issue
// 14), with its name and what is wrong.
func TestDeployThumbnail(t *testing.T) {
	var png bytes.Buffer
	if err := pngenc.Encode(&png, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	const manifest = "name: hello\nthumbnail: pics/card.png\ncomponents:\n  - name: web\n    build: web\n"
	cases := []struct {
		name     string
		manifest string
		file     []byte // nil: no thumbnail sent
		status   int
		msg      string
	}{
		{name: "a PNG is kept", manifest: manifest, file: png.Bytes()},
		{name: "over 1 MiB", manifest: manifest, file: append(png.Bytes(), make([]byte, 1<<20)...),
			status: http.StatusUnprocessableEntity, msg: fmt.Sprintf("thumbnail pics/card.png is %d bytes; at most 1048576 (1 MiB)", png.Len()+1<<20)},
		{name: "not an image", manifest: manifest, file: []byte("<svg onload=alert(1)></svg>"),
			status: http.StatusUnprocessableEntity, msg: "thumbnail pics/card.png is not a PNG, JPEG or WebP image (its content reads as text/plain; charset=utf-8)"},
		{name: "named but not sent", manifest: manifest,
			status: http.StatusUnprocessableEntity, msg: "the manifest names thumbnail pics/card.png, but the upload has none"},
		{name: "sent but not named", manifest: strings.Replace(manifest, "thumbnail: pics/card.png\n", "", 1), file: png.Bytes(),
			status: http.StatusUnprocessableEntity, msg: "the upload has a thumbnail, but the manifest names none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeCtl()
			delete(ctl.sols, "hello")
			srv, secret, st := serveStore(t, ctl)
			req := client.DeployRequest{Name: "hello", Manifest: []byte(c.manifest), Contexts: map[string]string{"web": buildDir(t)}}
			if c.file != nil {
				req.Thumbnail = filepath.Join(t.TempDir(), "card.png")
				if err := os.WriteFile(req.Thumbnail, c.file, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := client.New(srv.URL, secret(token)).Deploy(context.Background(), req, nil)
			th, getErr := st.GetThumbnail(context.Background(), "hello")
			if c.status == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if getErr != nil || th.ContentType != "image/png" || !bytes.Equal(th.Data, c.file) {
					t.Errorf("kept %+v, %v; want the PNG", th, getErr)
				}
				return
			}
			wantAPIError(t, err, c.status, c.msg)
			if ctl.deployed.Manifest != nil {
				t.Errorf("the refused upload was deployed")
			}
			if !errors.Is(getErr, store.ErrNotFound) {
				t.Errorf("the refused thumbnail was kept: %+v", th)
			}
		})
	}
}

// TestBrokenAnswers plays a server that answers outside the API's
// conventions: the client says what it got.
func TestBrokenAnswers(t *testing.T) {
	ctx := context.Background()
	const progress = `{"time":"2025-01-01T00:00:00Z","component":"web","message":"building"}` + "\n"
	deploy := func(c *client.Client) error {
		_, err := c.Deploy(ctx, client.DeployRequest{Name: "hello", Manifest: []byte("name: hello")}, nil)
		return err
	}
	cases := []struct {
		name    string
		handler http.HandlerFunc
		call    func(c *client.Client) error
		status  int // 0: not an API error
		msg     string
	}{{
		name: "a 5xx with a plain body",
		handler: func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "upstream connect error", http.StatusBadGateway)
		},
		call:   func(c *client.Client) error { _, err := c.Get(ctx, "hello"); return err },
		status: http.StatusBadGateway, msg: "GET /api/v1/solutions/hello: 502 Bad Gateway: upstream connect error",
	}, {
		name: "a 5xx with the API's error",
		handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error": "disk on fire"}`)
		},
		call:   func(c *client.Client) error { _, err := c.Remove(ctx, "hello", false); return err },
		status: http.StatusInternalServerError, msg: "disk on fire",
	}, {
		name: "a deploy stream that breaks",
		handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			fmt.Fprint(w, progress+`{"time": "2025-01-01T00:00:01Z", "mess`+"\n")
		},
		call: deploy, msg: "reading the deploy's progress: unexpected end of JSON input",
	}, {
		name: "a deploy stream that ends without a result",
		handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/x-ndjson")
			fmt.Fprint(w, progress)
		},
		call: deploy, msg: "the server ended the deploy without a result; see `aim status` and the server's log",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				c.handler(w, r)
			}))
			defer srv.Close()
			err := c.call(client.New(srv.URL, token))
			if c.status != 0 {
				wantAPIError(t, err, c.status, c.msg)
				return
			}
			if err == nil || err.Error() != c.msg {
				t.Errorf("err = %v, want %q", err, c.msg)
			}
		})
	}
}

func TestNoServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := client.New(srv.URL, "").List(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the aim server at "+srv.URL+" does not answer") {
		t.Errorf("err = %v, want one that says the server does not answer", err)
	}
}
