package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"
)

// TestVolumesOfAnEarlierOwner: beta holds the name acme-gone now (its
// deploy failed on acme's kept volume, or added one of its own), and
// acme's volume is still there. Beta neither sees, exports, imports nor
// deletes it; acme's own volume stays acme's to reach.
func TestVolumesOfAnEarlierOwner(t *testing.T) {
	w := newWorld(t, backends[0].dsn(t))
	ctl := fixtures(t)
	ctl.sols["acme-gone"] = sol(t, "beta", "name: acme-gone\ncomponents:\n  - name: web\n    image: aim-test/server:1\n")
	ctl.vols["acme-gone"] = append(ctl.vols["acme-gone"], solution.Volume{Name: "mine", Ref: "aim-acme-gone_mine", Size: 1 << 20, Owner: "beta"})
	a := newAPI(t, ctl, w.st)
	beta := w.secrets["beta"]

	rec := call(t, a, "GET", "/api/v1/solutions/acme-gone/volumes", beta, nil, "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"data"`) || !strings.Contains(rec.Body.String(), `"mine"`) {
		t.Errorf("beta lists: %d %s", rec.Code, rec.Body)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/solutions/acme-gone/volumes/data"},
		{"PUT", "/api/v1/solutions/acme-gone/volumes/data"},
	} {
		if rec := call(t, a, c.method, c.path, beta, strings.NewReader("x"), "application/x-tar"); rec.Code != http.StatusNotFound {
			t.Errorf("beta %s %s: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
	rec = call(t, a, "DELETE", "/api/v1/solutions/acme-gone?deleteData=true", beta, nil, "")
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"data"`) {
		t.Errorf("beta removes with its data: %d %s", rec.Code, rec.Body)
	}
	if vs := ctl.vols["acme-gone"]; len(vs) != 1 || vs[0].Name != "data" {
		t.Fatalf("after beta's rm --delete-data: %v, want acme's data only", vs)
	}
	// The name is free again; acme reaches what it kept.
	if rec := call(t, a, "GET", "/api/v1/solutions/acme-gone/volumes/data", w.secrets["acme"], nil, ""); rec.Code != http.StatusOK {
		t.Errorf("acme exports its kept volume: %d %s", rec.Code, rec.Body)
	}
}
