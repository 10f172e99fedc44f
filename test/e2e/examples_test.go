package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The examples build FROM local base images (images/build.sh); `make test`
// runs the Go tests before `make test-examples` builds them, so the tests
// make sure of them first. The script skips images that exist.
var (
	baseImagesOnce sync.Once
	baseImagesErr  error
)

func ensureBaseImages(t *testing.T) {
	t.Helper()
	baseImagesOnce.Do(func() {
		start := time.Now()
		out, err := exec.Command("../../images/build.sh", "all").CombinedOutput()
		if err != nil {
			baseImagesErr = err
			t.Logf("images/build.sh all:\n%s", out)
			return
		}
		t.Logf("base images ready in %s", time.Since(start).Round(time.Millisecond))
	})
	if baseImagesErr != nil {
		t.Fatalf("building the base images (images/build.sh all): %v", baseImagesErr)
	}
}

// startExamples starts aim for deploying an example: the base images
// exist and components get the production start timeout (60s), not the
// harness's 15s meant for the tiny test server.
func startExamples(t *testing.T) *Aim {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and deploys an example solution")
	}
	ensureBaseImages(t)
	return StartAim(t, "--start-timeout", "60s")
}

// deployExample deploys ../../examples/<name> and logs how long it took.
// A cold build of an example (three Go builds for part-comparer, on a
// busy 2-core machine) can take longer than the harness's 3-minute CLI
// limit, so this gives the deploy 10 minutes; with the engine's build
// cache warm it takes seconds.
func deployExample(t *testing.T, a *Aim, name string) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, aimBin, "deploy", "-q", "../../examples/"+name)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME=/nonexistent", "AIM_SERVER=http://"+a.Addr, "AIM_TOKEN="+a.Token())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("aim deploy %s after %s: %v\nstdout: %s\nstderr: %s", name, time.Since(start).Round(time.Second), err, out.String(), errOut.String())
	}
	t.Logf("deployed %s in %s: %s", name, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out.String()))
}

// noRedirects is a client that reports redirects instead of following
// them (a followed redirect would lose the solution's Host).
var noRedirects = &http.Client{
	Timeout:       2 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// send sends a request to a solution through the gateway.
func send(t *testing.T, a *Aim, method, solution, path, ctype string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+a.Addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = solution + ".localhost"
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, solution, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading the body: %v", method, solution, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

func postJSON(t *testing.T, a *Aim, solution, path string, in, out any) int {
	t.Helper()
	b, _ := json.Marshal(in)
	code, _, body := send(t, a, http.MethodPost, solution, path, "application/json", b)
	if code == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("POST %s: %v: %s", path, err, body)
		}
	}
	if code != 200 {
		t.Errorf("POST %s%s: %d %s", solution, path, code, body)
	}
	return code
}

func TestExampleTextEmbedding(t *testing.T) {
	a := startExamples(t)
	deployExample(t, a, "text-embedding")

	// The page at / is Swagger UI from local assets.
	if code, body := a.Get("text-embedding", "/"); code != 200 || !strings.Contains(body, "swagger-ui") {
		t.Errorf("GET /: %d %.300s", code, body)
	}
	// Held-out requirement sentences (app/tests/heldout_triplets.tsv): the
	// paraphrase must score higher than an unrelated requirement.
	triplets := [][3]string{
		{"The infusion pump shall alarm when the infusion line is blocked.",
			"An occlusion in the infusion line shall trigger an alarm on the pump.",
			"The pantograph shall keep contact with the overhead line."},
		{"The train doors shall stay locked while the train is in motion.",
			"Doors shall not open when the train is moving.",
			"The steel structure shall resist corrosion at sea."},
		{"The battery management system shall protect the cells from overvoltage.",
			"The battery controller shall keep each cell below its maximum voltage.",
			"The elevator shall stop level with the landing floor."},
	}
	type sim struct {
		Model      string  `json:"model"`
		Similarity float64 `json:"similarity"`
	}
	for _, tr := range triplets {
		var similar, unrelated sim
		postJSON(t, a, "text-embedding", "/similarity", map[string]string{"a": tr[0], "b": tr[1]}, &similar)
		postJSON(t, a, "text-embedding", "/similarity", map[string]string{"a": tr[0], "b": tr[2]}, &unrelated)
		t.Logf("%.50s…: similar %.3f, unrelated %.3f (%s)", tr[0], similar.Similarity, unrelated.Similarity, similar.Model)
		if similar.Model == "" || similar.Similarity > 1 || unrelated.Similarity < -1 {
			t.Errorf("implausible answers: %+v %+v", similar, unrelated)
		}
		if !(similar.Similarity > unrelated.Similarity) {
			t.Errorf("%q: the paraphrase scores %.4f, not above the unrelated %.4f", tr[0], similar.Similarity, unrelated.Similarity)
		}
	}
	// Bad input is the client's error, with pydantic's detail.
	if code, _, body := send(t, a, http.MethodPost, "text-embedding", "/similarity", "application/json", []byte(`{"a": "", "b": "x"}`)); code != 422 || !bytes.Contains(body, []byte("detail")) {
		t.Errorf("an empty text: %d %s", code, body)
	}
}

// part is one entry of GET /api/parts.
type part struct {
	ID, Name, Family string
}

type ranked struct {
	Results []struct {
		ID    string  `json:"id"`
		Name  string  `json:"name"`
		Score float64 `json:"score"`
	} `json:"results"`
}

// partsAndSTL lists the collection and downloads one part's STL through
// the gateway.
func partsAndSTL(t *testing.T, a *Aim, pick func([]part) part) ([]part, part, []byte) {
	t.Helper()
	code, _, body := send(t, a, http.MethodGet, "part-comparer", "/api/parts", "", nil)
	var list struct{ Parts []part }
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list.Parts) < 2 {
		t.Fatalf("GET /api/parts: %d %.300s", code, body)
	}
	p := pick(list.Parts)
	code, h, stl := send(t, a, http.MethodGet, "part-comparer", "/api/parts/"+p.ID+"/model.stl", "", nil)
	if code != 200 || len(stl) < 84+50 || h.Get("Content-Type") != "model/stl" {
		t.Fatalf("GET /api/parts/%s/model.stl: %d %s, %d bytes", p.ID, code, h.Get("Content-Type"), len(stl))
	}
	return list.Parts, p, stl
}

func multipartFile(t *testing.T, field, name string, data []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func compareSTL(t *testing.T, a *Aim, name string, data []byte) (int, []byte) {
	t.Helper()
	ctype, body := multipartFile(t, "file", name, data)
	code, _, out := send(t, a, http.MethodPost, "part-comparer", "/api/compare?k=5", ctype, body)
	return code, out
}

func TestExamplePartComparer(t *testing.T) {
	a := startExamples(t)
	deployExample(t, a, "part-comparer")

	if code, body := a.Get("part-comparer", "/"); code != 200 || !strings.Contains(body, `id="compare"`) {
		t.Errorf("GET /: %d %.300s", code, body)
	}
	// Each of a few parts, uploaded as downloaded, ranks itself first.
	parts, first, _ := partsAndSTL(t, a, func(ps []part) part { return ps[0] })
	for _, p := range []part{first, parts[len(parts)/2], parts[len(parts)-1]} {
		_, p, stl := partsAndSTL(t, a, func([]part) part { return p })
		code, body := compareSTL(t, a, p.ID+".stl", stl)
		var r ranked
		if code != 200 || json.Unmarshal(body, &r) != nil || len(r.Results) != 5 {
			t.Errorf("compare %s: %d %.500s", p.ID, code, body)
			continue
		}
		t.Logf("%s: first %s %.4f, second %s %.4f", p.ID, r.Results[0].ID, r.Results[0].Score, r.Results[1].ID, r.Results[1].Score)
		if r.Results[0].ID != p.ID || r.Results[0].Score < 0.999 {
			t.Errorf("compare %s: ranked %+v first", p.ID, r.Results[0])
		}
	}

	// Malformed uploads are 400 with a JSON error: not STL at all (the
	// api's check), a binary STL cut short, and ASCII STL with garbage in
	// it (both the engine's detailed errors, relayed).
	_, _, stl := partsAndSTL(t, a, func(ps []part) part { return ps[0] })
	badASCII := []byte("solid x\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 zero\n  endloop\n endfacet\nendsolid x\n")
	truncated := append([]byte(nil), stl[:len(stl)-17]...)
	lying := append([]byte(nil), stl...)
	binary.LittleEndian.PutUint32(lying[80:84], 1<<30)
	for name, data := range map[string][]byte{
		"not-stl.txt": []byte("this is not a mesh\n"),
		"cut.stl":     truncated,
		"lying.stl":   lying,
		"bad.stl":     badASCII,
	} {
		code, body := compareSTL(t, a, name, data)
		var e struct{ Error string }
		if code != 400 || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %.300s, want 400 with a JSON error", name, code, body)
		} else {
			t.Logf("%s: 400 %s", name, e.Error)
		}
	}
	if code, _, body := send(t, a, http.MethodPost, "part-comparer", "/api/compare", "application/octet-stream", stl); code != 415 {
		t.Errorf("a raw body instead of multipart: %d %s", code, body)
	}

	// The engine is private: its endpoints (/healthz, /parts, /parts/{id}/…,
	// /compare) do not answer from the engine through the gateway, under
	// any spelling; /api/... reaches only the api's own routes.
	engineLike := func(b []byte) bool {
		return bytes.Contains(b, []byte(`"parts":`)) || bytes.Contains(b, []byte("D2 shape distribution")) ||
			bytes.HasPrefix(b, []byte("aim part-comparer")) || bytes.Contains(b, []byte(`"results":`))
	}
	ctype, upload := multipartFile(t, "file", "p.stl", stl)
	for _, c := range []struct{ method, path, ctype string }{
		{"GET", "/healthz", ""},
		{"GET", "/parts", ""},
		{"GET", "/parts/" + first.ID + "/model.stl", ""},
		{"POST", "/compare", "application/octet-stream"},
		{"POST", "/compare", ctype},
		{"GET", "/engine/parts", ""},
		{"GET", "/engine:8080/parts", ""},
		{"GET", "/api/../parts", ""},
		{"GET", "/api/%2e%2e/parts", ""},
		{"GET", "/api/healthz/../../parts", ""},
	} {
		body := stl
		if c.ctype == ctype {
			body = upload
		}
		if c.method == "GET" {
			body = nil
		}
		code, h, out := send(t, a, c.method, "part-comparer", c.path, c.ctype, body)
		t.Logf("%s %s: %d %s", c.method, c.path, code, h.Get("Content-Type"))
		if engineLike(out) {
			t.Errorf("%s %s reached the engine: %d %.200s", c.method, c.path, code, out)
		}
		if code == 200 {
			t.Errorf("%s %s: 200 %s %.200s, want an error", c.method, c.path, h.Get("Content-Type"), out)
		}
	}
	// Another Host does not reach it either.
	if code, _, out := send(t, a, http.MethodGet, "engine.part-comparer", "/parts", "", nil); code < 400 || engineLike(out) {
		t.Errorf("engine.part-comparer.localhost/parts: %d %.200s", code, out)
	}
}
