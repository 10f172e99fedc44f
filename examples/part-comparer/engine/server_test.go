package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimhub/aim/examples/part-comparer/engine/internal/parts"
	"github.com/aimhub/aim/examples/part-comparer/engine/internal/stl"
)

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newServer(testCollection(t), config{MaxUpload: 1 << 20, MaxTriangles: 10_000}))
	t.Cleanup(ts.Close)
	return ts
}

type errBody struct {
	Error string `json:"error"`
}

func post(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	res, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return res.StatusCode, b
}

func partBytes(t *testing.T, id string, ascii bool) []byte {
	t.Helper()
	for _, p := range parts.Collection() {
		if p.ID == id {
			var buf bytes.Buffer
			m := transformed(p.Mesh, rand.New(rand.NewPCG(7, 7)), 3.5)
			if ascii {
				stl.WriteASCII(&buf, m, id)
			} else {
				stl.WriteBinary(&buf, m, "")
			}
			return buf.Bytes()
		}
	}
	t.Fatalf("no part %s", id)
	return nil
}

func TestCompareEndpoint(t *testing.T) {
	ts := testServer(t)
	for _, ascii := range []bool{false, true} {
		code, b := post(t, ts.URL+"/compare?k=5", partBytes(t, "gear-z18-d60-w10", ascii))
		if code != 200 {
			t.Fatalf("status %d: %s", code, b)
		}
		var r struct {
			Query struct {
				Format    string
				Triangles int
				Preview   string
			}
			Results []Result
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		wantFormat := map[bool]string{false: "binary", true: "ascii"}[ascii]
		if r.Query.Format != wantFormat || r.Query.Triangles == 0 || !strings.HasPrefix(r.Query.Preview, "data:image/png;base64,") {
			t.Errorf("query %+v", r.Query)
		}
		if len(r.Results) != 5 || r.Results[0].ID != "gear-z18-d60-w10" {
			t.Fatalf("results %+v", r.Results)
		}
		for i, res := range r.Results {
			if res.Score < 0 || res.Score > 1 || (i > 0 && res.Score > r.Results[i-1].Score) {
				t.Errorf("scores not in [0,1] and descending: %+v", r.Results)
			}
		}
	}
}

func TestCompareRejects(t *testing.T) {
	ts := testServer(t)
	good := partBytes(t, "plate-100x60x5-h4", false)
	big := make([]byte, 1<<20+1)
	copy(big, "solid x\n")
	for _, c := range []struct {
		name, query string
		body        []byte
		code        int
		want        string
	}{
		{"empty", "", nil, 400, "empty"},
		{"not stl", "", []byte("GIF89a this is not a mesh at all, not even close............................"), 400, "not ASCII STL"},
		{"truncated", "", good[:len(good)-10], 400, "truncated"},
		{"degenerate", "", []byte("solid x\nfacet normal 0 0 0\nouter loop\nvertex 1 1 1\nvertex 1 1 1\nvertex 1 1 1\nendloop\nendfacet\nendsolid\n"), 400, "no surface area"},
		{"too large", "", big, 413, "larger than"},
		{"bad k", "?k=0", good, 400, "k must be"},
		{"bad k 2", "?k=abc", good, 400, "k must be"},
	} {
		code, b := post(t, ts.URL+"/compare"+c.query, c.body)
		var e errBody
		json.Unmarshal(b, &e)
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: got %d %s, want %d mentioning %q", c.name, code, b, c.code, c.want)
		}
	}
	// Too many triangles for the configured limit (10,000).
	var buf bytes.Buffer
	m := &stl.Mesh{}
	for i := 0; i < 10_001; i++ {
		m.Triangles = append(m.Triangles, stl.Triangle{{0, 0, 0}, {1, 0, 0}, {0, float64(i + 1), 0}})
	}
	stl.WriteBinary(&buf, m, "")
	if code, b := post(t, ts.URL+"/compare", buf.Bytes()); code != 400 || !strings.Contains(string(b), "limit of 10000") {
		t.Errorf("triangle limit: %d %s", code, b)
	}
}

func TestPartsEndpoints(t *testing.T) {
	ts := testServer(t)
	res, err := http.Get(ts.URL + "/parts")
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Parts []entry }
	json.NewDecoder(res.Body).Decode(&list)
	res.Body.Close()
	if len(list.Parts) < 30 {
		t.Fatalf("%d parts", len(list.Parts))
	}
	families := map[string]int{}
	for _, p := range list.Parts {
		families[p.Family]++
	}
	for _, f := range []string{"plate", "bracket", "flange", "shaft", "gear"} {
		if families[f] < 5 {
			t.Errorf("family %s has %d parts", f, families[f])
		}
	}
	id := list.Parts[0].ID
	for path, ct := range map[string]string{"/parts/" + id + "/preview.png": "image/png", "/parts/" + id + "/model.stl": "model/stl"} {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != ct || len(b) < 100 {
			t.Errorf("%s: %d %s %d bytes", path, res.StatusCode, res.Header.Get("Content-Type"), len(b))
		}
	}
	for _, path := range []string{"/parts/nope/preview.png", "/parts/../main.go/model.stl", "/admin"} {
		res, _ := http.Get(ts.URL + path)
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("%s: %d", path, res.StatusCode)
		}
	}
}

// The Docker build writes the collection with cmd/genparts and the engine
// reads it back from PARTS_DIR: same parts, same ranking.
func TestGeneratedDirectory(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("go", "run", "./cmd/genparts", "-out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("genparts: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.stl"))
	if len(files) != len(parts.Collection()) {
		t.Fatalf("%d files", len(files))
	}
	if _, err := os.Stat(filepath.Join(dir, "parts.json")); err != nil {
		t.Fatal(err)
	}
	c, err := loadCollection(dir)
	if err != nil {
		t.Fatal(err)
	}
	mem := testCollection(t)
	for i, e := range c.parts {
		if e.ID != mem.parts[i].ID || e.Name != mem.parts[i].Name || *e.desc != *mem.parts[i].desc {
			t.Errorf("part %d: %s/%s differs from the in-memory collection", i, e.ID, e.Name)
		}
	}
}
