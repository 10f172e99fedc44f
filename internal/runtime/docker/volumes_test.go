package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestRewriteImport: an import lands under volume/, owned by the
// volume's owner and without set-id bits, and refuses what is not data.
func TestRewriteImport(t *testing.T) {
	type entry struct {
		name string
		typ  byte
		mode int64
		link string
	}
	build := func(es ...entry) io.Reader {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, e := range es {
			_ = tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: 0, Gid: 0})
		}
		_ = tw.Close()
		return &b
	}
	for _, tc := range []struct {
		name    string
		in      []entry
		want    string // name uid:gid mode link, one a line
		wantErr string
	}{
		{name: "files and directories", in: []entry{{"./", tar.TypeDir, 0o755, ""}, {"./a/", tar.TypeDir, 0o755, ""}, {"a/f", tar.TypeReg, 0o4755, ""}, {"l", tar.TypeLink, 0o644, "a/f"}},
			want: "volume/a/ 65534:65534 755 \nvolume/a/f 65534:65534 755 \nvolume/l 65534:65534 644 volume/a/f\n"},
		{name: "implied directories", in: []entry{{"x/y/f", tar.TypeReg, 0o644, ""}, {"x/g", tar.TypeReg, 0o644, ""}},
			want: "volume/x/ 65534:65534 755 \nvolume/x/y/ 65534:65534 755 \nvolume/x/y/f 65534:65534 644 \nvolume/x/g 65534:65534 644 \n"},
		{name: "a device", in: []entry{{"dev", tar.TypeChar, 0o644, ""}}, wantErr: `entry "dev" is not a file`},
		{name: "dot-dot", in: []entry{{"../etc/passwd", tar.TypeReg, 0o644, ""}}, wantErr: `has a .. in its path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := rewriteImport(build(tc.in...), &out, 65534, 65534)
			if tc.wantErr != "" {
				var ie *ImportError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			tr := tar.NewReader(&out)
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got.WriteString(h.Name + " " + itoa(h.Uid) + ":" + itoa(h.Gid) + " " + strconvOct(h.Mode) + " " + h.Linkname + "\n")
			}
			if got.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got.String(), tc.want)
			}
		})
	}
}

func itoa(i int) string         { return strconv.Itoa(i) }
func strconvOct(m int64) string { return strconv.FormatInt(m, 8) }
