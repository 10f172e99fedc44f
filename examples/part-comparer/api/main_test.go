package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeEngine records calls and answers like the engine would.
type fakeEngine struct {
	calls atomic.Int32
	last  atomic.Value // string: method path?query
	body  atomic.Value // []byte
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	f.last.Store(r.Method + " " + r.URL.RequestURI())
	b, _ := io.ReadAll(r.Body)
	f.body.Store(b)
	switch {
	case r.Method == "POST" && r.URL.Path == "/compare":
		if bytes.HasPrefix(b, []byte("solid bad")) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"invalid STL: line 2: expected \"facet\""}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"results":[{"id":"a","score":1}]}`))
	case r.URL.Path == "/parts":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"parts":[]}`))
	case r.URL.Path == "/parts/a/preview.png":
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x89PNG"))
	default:
		w.WriteHeader(404)
	}
}

func setup(t *testing.T) (*httptest.Server, *fakeEngine) {
	t.Helper()
	fe := &fakeEngine{}
	es := httptest.NewServer(fe)
	t.Cleanup(es.Close)
	u, _ := url.Parse(es.URL)
	s := &server{engine: u, client: es.Client(), maxUpload: 1 << 20}
	ts := httptest.NewServer(s.routes())
	t.Cleanup(ts.Close)
	return ts, fe
}

func binarySTL(n int) []byte {
	b := make([]byte, 84+50*n)
	binary.LittleEndian.PutUint32(b[80:], uint32(n))
	return b
}

func upload(t *testing.T, url, field string, data []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("note", "ignored")
	fw, _ := mw.CreateFormFile(field, "part.stl")
	fw.Write(data)
	mw.Close()
	res, err := http.Post(url, mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return res.StatusCode, string(b)
}

func TestCompareForwards(t *testing.T) {
	ts, fe := setup(t)
	for _, data := range [][]byte{binarySTL(3), []byte("  solid x\nfacet ...")} {
		code, body := upload(t, ts.URL+"/api/compare?k=7", "file", data)
		if code != 200 || !strings.Contains(body, `"score":1`) {
			t.Fatalf("%d %s", code, body)
		}
		if got := fe.last.Load(); got != "POST /compare?k=7" {
			t.Errorf("engine called with %v", got)
		}
		if !bytes.Equal(fe.body.Load().([]byte), data) {
			t.Error("engine did not receive the file as uploaded")
		}
	}
}

func TestCompareRejects(t *testing.T) {
	ts, fe := setup(t)
	for _, c := range []struct {
		name, query, field string
		data               []byte
		code               int
		want               string
	}{
		{"empty", "", "file", nil, 400, "empty file"},
		{"png", "", "file", append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 200)...), 400, "not ASCII STL"},
		{"short", "", "file", []byte("hello"), 400, "too short"},
		{"truncated", "", "file", binarySTL(3)[:200], 400, "header announces 3 triangles"},
		{"lying count", "", "file", func() []byte { b := binarySTL(3); b[80] = 200; return b }(), 400, "announces 200 triangles"},
		{"wrong field", "", "upload", binarySTL(3), 400, `missing multipart field "file"`},
		{"too large", "", "file", binarySTL(1<<20/50 + 1), 413, "larger than"},
		{"bad k", "?k=0", "file", binarySTL(3), 400, "k must be"},
		{"k too big", "?k=51", "file", binarySTL(3), 400, "k must be"},
	} {
		before := fe.calls.Load()
		code, body := upload(t, ts.URL+"/api/compare"+c.query, c.field, c.data)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: got %d %s, want %d mentioning %q", c.name, code, body, c.code, c.want)
		}
		if fe.calls.Load() != before {
			t.Errorf("%s: the engine was called", c.name)
		}
	}
	// The engine's own validation errors are relayed.
	code, body := upload(t, ts.URL+"/api/compare", "file", []byte("solid bad\nfoo"))
	if code != 400 || !strings.Contains(body, "expected") {
		t.Errorf("engine 400 not relayed: %d %s", code, body)
	}
	// Not multipart.
	res, _ := http.Post(ts.URL+"/api/compare", "application/octet-stream", bytes.NewReader(binarySTL(3)))
	res.Body.Close()
	if res.StatusCode != 415 {
		t.Errorf("octet-stream: %d", res.StatusCode)
	}
}

func TestOnlyPublicEndpoints(t *testing.T) {
	ts, fe := setup(t)
	for path, want := range map[string]int{
		"/api/openapi.json":                200,
		"/api/parts":                       200,
		"/api/parts/a/preview.png":         200,
		"/api/healthz":                     200,
		"/parts":                           404, // engine paths are not served without /api
		"/compare":                         404,
		"/api/parts/a/secret":              404,
		"/api/parts/..%2f..%2fx/model.stl": 404,
		"/api/parts/UPPER/model.stl":       404,
		"/api/engine/healthz":              404,
	} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, res.StatusCode, want)
		}
	}
	res, _ := http.Get(ts.URL + "/api/parts/a/preview.png")
	res.Body.Close()
	if got := fe.last.Load(); got != "GET /parts/a/preview.png" || res.Header.Get("Content-Type") != "image/png" {
		t.Errorf("last engine call %v", got)
	}
	var doc struct {
		OpenAPI string
		Paths   map[string]any
	}
	res, _ = http.Get(ts.URL + "/api/openapi.json")
	json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Paths["/api/compare"] == nil {
		t.Errorf("openapi.json: %+v", doc)
	}
}

func TestEngineDown(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	s := &server{engine: u, client: http.DefaultClient, maxUpload: 1 << 20}
	ts := httptest.NewServer(s.routes())
	defer ts.Close()
	code, body := upload(t, ts.URL+"/api/compare", "file", binarySTL(2))
	if code != 502 || !strings.Contains(body, "unavailable") {
		t.Errorf("%d %s", code, body)
	}
}
