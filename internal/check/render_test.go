package check

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixedReport has a failure, a warning and a skip on two components.
func fixedReport() *Report {
	return &Report{
		Solution: "demo",
		Images:   map[string]string{"web": "demo/web:1", "engine": "demo/engine:1"},
		Results: []Result{
			NewResult("starts", "web", Pass, "running"),
			NewResult("port-8080", "engine", Fail, "nothing on 8080 after 60s; the process listens on 0.0.0.0:5000"),
			NewResult("root-html", "web", Fail, "GET / → 404"),
			NewResult("sigterm", "engine", Skip, "it never answered on 8080"),
			NewResult("openapi", "", Pass, "GET /openapi.json → 200 OpenAPI 3.1.0"),
			NewResult("no-internet", "web", Warn, "tried to connect to 198.51.100.1:443 at start"),
		},
		StartupTime: Duration(1250 * time.Millisecond),
		IdleMemory:  14 << 20,
		ImageSize:   9_400_000,
		OpenAPI:     "/openapi.json",
	}
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer, *Report) error
	}{
		{"report.txt", func(b *bytes.Buffer, r *Report) error { return WriteText(b, r) }},
		{"report.json", func(b *bytes.Buffer, r *Report) error { return WriteJSON(b, r) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b, fixedReport()); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n%s", tc.name, golden, b.String())
			}
		})
	}
}

// TestJSONRoundTrip pins that a stored report reads back the same, as the
// catalog reads the OpenAPI link from it.
func TestJSONRoundTrip(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, fixedReport()); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, fixedReport()) {
		t.Errorf("round trip changed the report:\n%+v", got)
	}
}
