package spec

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestParseGolden parses every testdata/*.yaml; valid ones are pinned as
// their normalised JSON, invalid ones as the error text a provider sees.
func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test manifests: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(filepath.Base(f), data)
			var got string
			switch {
			case strings.HasPrefix(name, "valid") && err != nil:
				t.Fatalf("valid manifest rejected: %v", err)
			case strings.HasPrefix(name, "bad") && err == nil:
				t.Fatalf("bad manifest accepted")
			case err != nil:
				got = err.Error() + "\n"
			default:
				b, _ := json.MarshalIndent(m, "", "  ")
				got = string(b) + "\n"
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"simple", "hello", true},
		{"dash", "part-comparer", true},
		{"digits", "a1", true},
		{"upper", "Hello", false},
		{"underscore", "a_b", false},
		{"leading dash", "-a", false},
		{"trailing dash", "a-", false},
		{"too long", strings.Repeat("a", 64), false},
		{"max length", strings.Repeat("a", 63), true},
		{"empty", "", false},
		{"dot", "a.b", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidName(tc.in); (err == nil) != tc.ok {
				t.Errorf("ValidName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"256Mi", 256 << 20, true},
		{"10MiB", 10 << 20, true},
		{"1G", 1e9, true},
		{"1024", 1024, true},
		{"-1Mi", 0, false},
		{"lots", 0, false},
	} {
		got, err := ParseByteSize(tc.in)
		if (err == nil) != tc.ok || int64(got) != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want CPU
		ok   bool
	}{{"0.5", 500, true}, {"2", 2000, true}, {"250m", 250, true}, {"0", 0, false}, {"x", 0, false}} {
		got, err := ParseCPU(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseCPU(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// Manifests made to hurt the parser get a located error, not a long
// parse or a large allocation.
func TestParseHostile(t *testing.T) {
	big := filepath.Join(t.TempDir(), "aim.yaml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := ReadFile(big); err == nil || !strings.HasSuffix(err.Error(), "aim.yaml: manifest is larger than the limit of 1048576 bytes") {
		t.Errorf("a 50 MB file: %v", err)
	}
	for _, c := range []struct {
		name, data, want string
	}{
		{"deep flow nesting", "name: x\ncomponents: " + strings.Repeat("[", 400_000) + strings.Repeat("]", 400_000) + "\n",
			"aim.yaml:2: not valid YAML: exceeded max depth of 10000"},
		{"deep mappings", "name: x\nmeta: " + strings.Repeat("{a: ", 100_000) + strings.Repeat("}", 100_000) + "\n",
			"aim.yaml:2: not valid YAML: exceeded max depth of 10000"},
		{"just over the size", strings.Repeat("#", 1<<20+1),
			"aim.yaml: manifest is 1048577 bytes; the limit is 1048576"},
		{"a NUL byte", "name: x\x00\n", "aim.yaml: not valid YAML: control characters are not allowed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("aim.yaml", []byte(c.data))
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v\nwant %s", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("aim.yaml", data)
		if err == nil && (m.Name == "" || len(m.Components) == 0) {
			t.Fatalf("accepted a manifest without a name or components: %q", data)
		}
	})
}
