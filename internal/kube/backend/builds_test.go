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
