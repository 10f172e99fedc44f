package main

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestPage(t *testing.T) {
	ts := httptest.NewServer(handler(nil))
	defer ts.Close()
	res, body := get(t, ts.URL+"/")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// The ids a browser test relies on.
	for _, want := range []string{`id="stl"`, `type="file"`, `id="compare"`, `>Compute similarity<`, `id="results"`, `<ol id="results"`, `id="status"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	if res.Header.Get("Content-Security-Policy") == "" {
		t.Error("no CSP")
	}
	for path, ct := range map[string]string{"/app.js": "text/javascript", "/style.css": "text/css"} {
		res, _ := get(t, ts.URL+path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %q", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// The script builds the ranked list the browser test reads.
	_, js := get(t, ts.URL+"/app.js")
	for _, want := range []string{`dataset.part`, `className: "score"`, `"/api/compare`} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	for _, path := range []string{"/nope.html", "/api/compare"} {
		if res, _ := get(t, ts.URL+path); res.StatusCode != 404 {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
}

// No CDN, no external resource: everything is served from here.
func TestNoExternalResources(t *testing.T) {
	ext := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	fs.WalkDir(static, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := static.ReadFile(path)
		if m := ext.Find(b); m != nil {
			t.Errorf("%s refers to %s", path, m)
		}
		return nil
	})
}

func TestAPIProxy(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "api saw "+r.URL.Path)
	}))
	defer api.Close()
	u, _ := url.Parse(api.URL)
	ts := httptest.NewServer(handler(u))
	defer ts.Close()
	// The prefix is not stripped, as on the platform.
	if _, body := get(t, ts.URL+"/api/parts"); body != "api saw /api/parts" {
		t.Errorf("got %q", body)
	}
}
