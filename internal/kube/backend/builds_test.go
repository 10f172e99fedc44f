package backend

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/aimhub/aim/internal/kube/kbuild"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// TestContextServedOnce: a build context goes to the bearer of its token,
// once; a wrong or missing token and a second fetch get nothing.
func TestContextServedOnce(t *testing.T) {
	b := newBuilds(BuildConfig{TempDir: t.TempDir()}, nil, slog.New(slog.DiscardHandler))
	path := filepath.Join(t.TempDir(), "ctx.tar")
	if err := os.WriteFile(path, []byte("tar bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.pending["web-1"] = &pendingContext{path: path, size: 9, token: "right"}
	mux := http.NewServeMux()
	mux.Handle(ContextPath, b)
	fetch := func(id, auth string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/builds/"+id+"/context", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	for _, tc := range []struct {
		name, id, auth string
		code           int
		body           string
	}{
		{"no token", "web-1", "", 404, ""},
		{"wrong token", "web-1", "Bearer wrong", 404, ""},
		{"another build", "api-1", "Bearer right", 404, ""},
		{"its token", "web-1", "Bearer right", 200, "tar bytes"},
		{"again", "web-1", "Bearer right", 404, ""},
	} {
		code, body := fetch(tc.id, tc.auth)
		if code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("%s: got %d %q, want %d %q", tc.name, code, body, tc.code, tc.body)
		}
	}
}

// TestSpoolLimit: a context over the builds' limit is refused, naming the
// component and the limit; one within it is kept and hashed with its
// Dockerfile's name.
func TestSpoolLimit(t *testing.T) {
	b := newBuilds(BuildConfig{TempDir: t.TempDir(), Job: kbuild.Options{MaxContext: 10}}, nil, slog.New(slog.DiscardHandler))
	c := spec.Component{Name: "engine", Build: "engine"}
	_, _, _, err := b.spool(c, strings.NewReader("01234567890"))
	var ie *solution.InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Msg, "component engine") || !strings.Contains(ie.Msg, "limit for builds of 10 bytes") {
		t.Errorf("over the limit: %v", err)
	}
	p1, n, h1, err := b.spool(c, strings.NewReader("0123456789"))
	if err != nil || n != 10 {
		t.Fatalf("at the limit: %d %v", n, err)
	}
	c.Dockerfile = "Dockerfile.prod"
	_, _, h2, err := b.spool(c, strings.NewReader("0123456789"))
	if err != nil || h1 == h2 {
		t.Errorf("another Dockerfile, same hash %s, or %v", h1, err)
	}
	if got, _ := os.ReadFile(p1); string(got) != "0123456789" {
		t.Errorf("kept %q", got)
	}
}

func TestBuildID(t *testing.T) {
	for _, n := range [][2]string{{"part-comparer", "engine"}, {strings.Repeat("a", 17) + "-b", "component-with-a-long-name"}} {
		id := buildID(n[0], n[1])
		if len(id) > 40 || len(validation.IsDNS1123Label(id)) > 0 {
			t.Errorf("buildID(%q, %q) = %q: not a label of at most 40", n[0], n[1], id)
		}
	}
}

// TestForeign: a solution may name its own builds in the build registry
// (a rollback does) and what an admin pushed outside aim/, never another
// solution's builds, by whichever name the registry goes by.
func TestForeign(t *testing.T) {
	b := newBuilds(BuildConfig{PullHost: "192.0.2.2:30500", Registry: "aim-registry.aim.svc:5000"}, nil, slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		image   string
		refused bool
	}{
		{"192.0.2.2:30500/aim/shop/web@sha256:" + strings.Repeat("a", 64), false},
		{"192.0.2.2:30500/aim-e2e/testserver:1", false},
		{"ghcr.io/aim/other/web:1", false},
		{"python:3.12", false},
		{"192.0.2.2:30500/aim/other/web@sha256:" + strings.Repeat("a", 64), true},
		{"192.0.2.2:30500/aim/shopping/web:latest", true},
		{"aim-registry.aim.svc:5000/aim/other/web:latest", true},
		{"AIM-REGISTRY.aim.svc:5000/aim/other/web:latest", true},
	} {
		m := &spec.Manifest{Name: "shop", Components: []spec.Component{{Name: "web", Image: tc.image}}}
		err := b.foreign(m)
		if (err != nil) != tc.refused {
			t.Errorf("%s: %v, want refused %v", tc.image, err, tc.refused)
		}
	}
}
