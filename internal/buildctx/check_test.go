package buildctx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one tar header of a test context; body is a file's content.
type entry struct {
	name, link string
	typ        byte
	body       string
	size       int64 // overrides len(body) in the header when set
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name string) entry        { return entry{name: name, typ: tar.TypeReg, body: "x"} }
func dir(name string) entry         { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, to string) entry { return entry{name: name, link: to, typ: tar.TypeSymlink} }
func hardlink(name, to string) entry {
	return entry{name: name, link: to, typ: tar.TypeLink}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		lim     Limits
		want    string // the error, empty for none
	}{
		{name: "a plain context", entries: []entry{dir("./"), file("Dockerfile"), dir("src/"), file("src/main.go")}},
		{name: "links inside", entries: []entry{
			file("a/b/c.txt"), symlink("a/up", ".."), symlink("a/b/same", "c.txt"), symlink("top", "a/b"),
			symlink("a/b/root", "../.."), hardlink("copy", "a/b/c.txt"),
		}},
		{name: "a link to a link that stays inside", entries: []entry{dir("a/b/"), symlink("a/b/d", "../.."), symlink("e", "a/b/d/a")}},
		{name: "dot-dot out", entries: []entry{file("../../etc/passwd")},
			want: `entry "../../etc/passwd": the path leaves the build context (it must be relative, without ../ out of it)`},
		{name: "dot-dot out after going in", entries: []entry{file("a/../../x")},
			want: `entry "a/../../x": the path leaves the build context (it must be relative, without ../ out of it)`},
		{name: "absolute path", entries: []entry{file("/etc/cron.d/x")},
			want: `entry "/etc/cron.d/x": the path leaves the build context (it must be relative, without ../ out of it)`},
		{name: "absolute symlink", entries: []entry{symlink("passwd", "/etc/passwd")},
			want: `entry "passwd": the symlink points at "/etc/passwd"; a link in a build context must be relative and stay inside it`},
		{name: "relative symlink out", entries: []entry{dir("a/"), symlink("a/out", "../../home")},
			want: `entry "a/out": it resolves, through the context's symlinks, to a path outside the build context`},
		{name: "out through another link", entries: []entry{dir("a/b/"), symlink("a/b/d", "../.."), symlink("a/b/e", "d/..")},
			want: `entry "a/b/e": it resolves, through the context's symlinks, to a path outside the build context`},
		{name: "a link made later turns an earlier path out", entries: []entry{file("d/x"), symlink("e", "d/.."), symlink("d", "..")},
			want: `entry "d/x": it resolves, through the context's symlinks, to a path outside the build context`},
		{name: "a file below a link out", entries: []entry{symlink("up", ".."), file("up/escaped")},
			want: `entry "up": it resolves, through the context's symlinks, to a path outside the build context`},
		{name: "symlink loop", entries: []entry{symlink("a", "b"), symlink("b", "a")},
			want: `entry "a": resolving it follows more than 40 symlinks (a loop?)`},
		{name: "hard link out", entries: []entry{hardlink("shadow", "../../etc/shadow")},
			want: `entry "shadow": the hard link names "../../etc/shadow", which is not a file earlier in the build context`},
		{name: "hard link to nothing", entries: []entry{hardlink("x", "later"), file("later")},
			want: `entry "x": the hard link names "later", which is not a file earlier in the build context`},
		{name: "character device", entries: []entry{{name: "null", typ: tar.TypeChar}},
			want: `entry "null": it is a character device; a build context holds files, directories and links only`},
		{name: "block device", entries: []entry{{name: "sda", typ: tar.TypeBlock}},
			want: `entry "sda": it is a block device; a build context holds files, directories and links only`},
		{name: "fifo", entries: []entry{{name: "pipe", typ: tar.TypeFifo}},
			want: `entry "pipe": it is a FIFO; a build context holds files, directories and links only`},
		{name: "too many entries", lim: Limits{Entries: 3}, entries: []entry{file("1"), file("2"), file("3"), file("4")},
			want: `the build context has more than 3 entries`},
		{name: "too many bytes", lim: Limits{Bytes: 10}, entries: []entry{{name: "big", typ: tar.TypeReg, body: strings.Repeat("x", 11)}},
			want: `entry "big": the build context's files add up to more than 10 bytes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(bytes.NewReader(tarOf(t, tc.entries...)), tc.lim)
			got := ""
			if err != nil {
				got = err.Error()
				var ee *EntryError
				if !errors.As(err, &ee) {
					t.Errorf("error %T, want *EntryError", err)
				}
			}
			if got != tc.want {
				t.Errorf("Check:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCheckStream(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, file("Dockerfile")))
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"gzip", gz.Bytes(), "the build context is gzip-compressed; aim takes an uncompressed tar (aim deploy sends one)"},
		{"not a tar", []byte(strings.Repeat("hello ", 200)), "the build context is not a valid tar stream after 0 entries: archive/tar: invalid tar header"},
		{"cut short", tarOf(t, file("a"), entry{name: "b", typ: tar.TypeReg, body: strings.Repeat("y", 2000)})[:1800], `entry "b": the build context is cut short in this file: unexpected EOF`},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(bytes.NewReader(tc.data), Limits{})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Check:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// A context Tar packs passes Check: what aim deploy sends is accepted,
// in-context links included.
func TestCheckAcceptsTar(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"Dockerfile", "src/main.go", "src/web/index.html"} {
		if err := os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../Dockerfile", filepath.Join(d, "src", "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(d, "src/main.go"), filepath.Join(d, "main.go")); err != nil {
		t.Fatal(err)
	}
	rc, err := Tar(d, "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := Check(rc, Limits{}); err != nil {
		t.Errorf("a directory packed by Tar: %v", err)
	}
}

// Whatever Check accepts names only paths inside the context.
func FuzzCheck(f *testing.F) {
	f.Add(tarOf(f, file("Dockerfile"), symlink("a", "b"), hardlink("c", "Dockerfile")))
	f.Add(tarOf(f, file("../x")))
	f.Add(tarOf(f, symlink("a", "../b")))
	f.Fuzz(func(t *testing.T, data []byte) {
		if Check(bytes.NewReader(data), Limits{Entries: 1000, Bytes: 1 << 20}) != nil {
			return
		}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				return
			}
			if h.Typeflag == tar.TypeXGlobalHeader {
				continue
			}
			if !filepath.IsLocal(h.Name) && h.Name != "./" && h.Name != "." {
				t.Fatalf("accepted entry %q, which is not local", h.Name)
			}
		}
	})
}
