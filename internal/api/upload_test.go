package api

import (
	"archive/tar"
	"bytes"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A hostile build context is refused while it is spooled, with what is
// wrong and where; nothing reaches the controller and the spool is
// emptied.
func TestDeployRefusesHostileContext(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	for _, c := range []struct {
		name string
		hdr  tar.Header
		says string
	}{
		{"dot-dot", tar.Header{Name: "../../etc/cron.d/x", Typeflag: tar.TypeReg},
			`build context of component web: entry "../../etc/cron.d/x": the path leaves the build context`},
		{"symlink out", tar.Header{Name: "passwd", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
			`build context of component web: entry "passwd": the symlink points at "/etc/passwd"`},
		{"device", tar.Header{Name: "mem", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 1},
			`build context of component web: entry "mem": it is a character device`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctl := fixtures(t)
			spool := t.TempDir()
			a := newAPI(t, ctl, w.st)
			a.cfg.TempDir = spool
			var ctx bytes.Buffer
			tw := tar.NewWriter(&ctx)
			for _, h := range []tar.Header{{Name: "Dockerfile", Typeflag: tar.TypeReg, Size: 1}, c.hdr} {
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write([]byte("x"))
				}
			}
			tw.Close()
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			mw.WriteField(FieldManifest, "name: fresh\ncomponents:\n  - name: web\n    build: web\n")
			part, _ := mw.CreateFormFile(FieldContext+"web", "web.tar")
			part.Write(ctx.Bytes())
			mw.Close()
			rec := call(t, a, "PUT", "/api/v1/solutions/fresh", w.secrets["acme"], &b, mw.FormDataContentType())
			if rec.Code != 400 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			if msg := errorOf(t, rec); !strings.HasPrefix(msg, c.says) {
				t.Errorf("%q does not start %q", msg, c.says)
			}
			if len(ctl.calls) != 0 {
				t.Errorf("the controller was asked to %q", ctl.calls)
			}
			if left, _ := os.ReadDir(spool); len(left) != 0 {
				t.Errorf("the spool keeps %d files", len(left))
			}
		})
	}
}
