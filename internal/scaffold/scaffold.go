// Package scaffold writes the small solutions of `aim init`: each one
// follows the packaging standard as it stands (aim check passes it) and
// carries a README that explains the standard.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/template"

	"github.com/aimhub/aim/internal/spec"
)

// The templates are stored with a .tmpl suffix, so that Go does not see
// their .go files and go.mod as part of aim.
//
//go:embed all:templates
var templates embed.FS

// Templates are the names Write accepts.
var Templates = []string{"go", "python", "static"}

// Options configure Write.
type Options struct {
	// Template is one of Templates. Empty means "go".
	Template string
	// Name is the solution's name, a DNS label. Empty means the
	// directory's base name, lower-cased, with other characters as "-".
	Name string
}

// data is what the templates see, as [[.Name]] and [[.Template]].
type data struct {
	Name, Template string
}

// Write creates dir (which must not exist or be empty) with the
// template's files and returns their paths, sorted.
func Write(dir string, o Options) ([]string, error) {
	if o.Template == "" {
		o.Template = "go"
	}
	if !slices.Contains(Templates, o.Template) {
		return nil, fmt.Errorf("unknown template %q (use %s)", o.Template, strings.Join(Templates, ", "))
	}
	if o.Name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		o.Name = nameFrom(filepath.Base(abs))
	}
	if err := spec.ValidName(o.Name); err != nil {
		return nil, fmt.Errorf("solution name %q: %w (set one with --name)", o.Name, err)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("%s is not empty; aim init writes only into a new or empty directory", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	d := data{Name: o.Name, Template: o.Template}
	var written []string
	for _, root := range []string{"templates/common", "templates/" + o.Template} {
		err := fs.WalkDir(templates, root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			src, err := templates.ReadFile(p)
			if err != nil {
				return err
			}
			t, err := template.New(p).Delims("[[", "]]").Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, d); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
			out := filepath.Join(dir, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(out, b.Bytes(), 0o644); err != nil {
				return err
			}
			written = append(written, out)
			return nil
		})
		if err != nil {
			return written, fmt.Errorf("writing the %s template: %w", o.Template, err)
		}
	}
	sort.Strings(written)
	return written, nil
}

var notLabel = regexp.MustCompile(`[^a-z0-9]+`)

// nameFrom makes a DNS label of a directory name: "My Solver_2" → "my-solver-2".
func nameFrom(base string) string {
	s := strings.Trim(notLabel.ReplaceAllString(strings.ToLower(base), "-"), "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		s = "solution-" + s
	}
	return strings.TrimSuffix(s, "-")
}
