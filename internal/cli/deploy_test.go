package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployRequestThumbnail: aim deploy sends the file the manifest's
// thumbnail names, and says so when it is not there.
func TestDeployRequestThumbnail(t *testing.T) {
	dir := t.TempDir()
	m := "name: hello\nthumbnail: pics/card.png\ncomponents:\n  - name: web\n    image: x\n"
	if err := os.WriteFile(filepath.Join(dir, "aim.yaml"), []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := deployRequest([]string{dir}, "", ""); err == nil || !strings.Contains(err.Error(), "thumbnail pics/card.png is not a file in "+dir) {
		t.Errorf("without the file: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pics"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pics", "card.png"), []byte("png"), 0o644); err != nil {
		t.Fatal(err)
	}
	req, err := deployRequest([]string{dir}, "", "")
	if err != nil || req.Thumbnail != filepath.Join(dir, "pics", "card.png") {
		t.Errorf("with the file: %+v %v", req, err)
	}
}
