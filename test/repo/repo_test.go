// Package repo tests the repository itself: that docs/architecture.md's
// map names every package, that no function outside tests grows past
// what a reader takes in at once, and that the packages above the
// runtimes link no Docker code.
package repo

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const root = "../.."

// goDirs lists the directories under roots holding Go files, as paths
// relative to the repository, whatever their build tags.
func goDirs(t *testing.T, roots ...string) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range roots {
		err := filepath.WalkDir(filepath.Join(root, r), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if !d.IsDir() && strings.HasSuffix(p, ".go") {
				rel, _ := filepath.Rel(root, filepath.Dir(p))
				seen[filepath.ToSlash(rel)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var out []string
	for d := range seen {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// mapEntries reads the first code block of docs/architecture.md: one
// package a line, its path first.
func mapEntries(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries := map[string]bool{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			if in {
				break
			}
			in = true
			continue
		}
		if !in {
			continue
		}
		path, desc, ok := strings.Cut(line, " ")
		if !ok || strings.TrimSpace(desc) == "" {
			t.Errorf("docs/architecture.md map: %q has no description", line)
		}
		entries[strings.TrimSuffix(strings.TrimSuffix(path, ","), "/")] = true
	}
	if len(entries) == 0 {
		t.Fatal("docs/architecture.md has no map (a code block listing the packages)")
	}
	return entries
}

func TestArchitectureMapListsEveryPackage(t *testing.T) {
	entries := mapEntries(t)
	dirs := goDirs(t, "internal", "api", "cmd", "test", "bench")
	for _, d := range dirs {
		if !entries[d] {
			t.Errorf("package %s is missing from docs/architecture.md's map: add a line saying what it is for", d)
		}
	}
	// And no line names a package that is gone.
	for e := range entries {
		if e == "examples" || e == "test/browser" {
			continue
		}
		if !slices.Contains(dirs, e) {
			t.Errorf("docs/architecture.md's map names %s, which holds no Go package", e)
		}
	}
}

// maxFuncLines bounds a function outside tests and benchmarks.
const maxFuncLines = 120

func TestNoLongFunctions(t *testing.T) {
	fset := token.NewFileSet()
	for _, d := range goDirs(t, "internal", "api", "cmd") {
		files, _ := filepath.Glob(filepath.Join(root, d, "*.go"))
		for _, p := range files {
			if strings.HasSuffix(p, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				start, end := fset.Position(fd.Pos()), fset.Position(fd.End())
				if n := end.Line - start.Line + 1; n > maxFuncLines {
					rel, _ := filepath.Rel(root, p)
					t.Errorf("%s:%d: %s is %d lines; split it (at most %d outside tests)", rel, start.Line, fd.Name.Name, n, maxFuncLines)
				}
			}
		}
	}
}

// TestNoDockerAboveTheRuntimes keeps the Docker client out of the packages
// both runtimes share: the API, the client, the pages and the controller
// (which reaches Docker only through internal/runtime's interface).
func TestNoDockerAboveTheRuntimes(t *testing.T) {
	for _, pkg := range []string{"internal/api", "internal/client", "internal/web", "internal/controller", "internal/solution", "internal/check"} {
		cmd := exec.Command("go", "list", "-deps", "./"+pkg)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			// moby's archive and patternmatcher are tar and .dockerignore
			// libraries (internal/buildctx packs a build context with
			// them); the engine's client and API types are docker/.
			if strings.HasPrefix(dep, "github.com/docker/") {
				t.Errorf("%s links %s; only internal/runtime/docker, internal/check/dockercheck and what assembles them may", pkg, dep)
			}
		}
	}
}
