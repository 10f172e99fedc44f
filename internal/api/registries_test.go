package api

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/solution"
)

// TestRegistryLoginsAreTheirOwners: a login is kept for the caller's
// provider (the admins' own for an admin), listed only to it, without
// its password, and removable only by it.
func TestRegistryLoginsAreTheirOwners(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	ctl := fixtures(t)
	a := newAPI(t, ctl, w.st)
	login := func(who, host, body string) int {
		return call(t, a, "PUT", "/api/v1/registries/"+host, w.secrets[who], strings.NewReader(body), "application/json").Code
	}
	if got := login("acme", "127.0.0.1:5000", `{"username": "acme", "password": "s3cret"}`); got != http.StatusOK {
		t.Fatalf("acme's login: %d", got)
	}
	if got := login("admin", "ghcr.io", `{"username": "ops", "password": "pw"}`); got != http.StatusOK {
		t.Fatalf("the admins' login: %d", got)
	}
	if ctl.logins["acme/127.0.0.1:5000"] != "acme:s3cret" || ctl.logins["/ghcr.io"] != "ops:pw" {
		t.Fatalf("kept: %v", ctl.logins)
	}
	list := func(who string) []solution.RegistryLogin {
		rec := call(t, a, "GET", "/api/v1/registries", w.secrets[who], nil, "")
		if strings.Contains(rec.Body.String(), "s3cret") {
			t.Errorf("%s's listing shows a password: %s", who, rec.Body)
		}
		var out struct{ Registries []solution.RegistryLogin }
		decode(t, rec, &out)
		return out.Registries
	}
	if l := list("acme"); len(l) != 1 || l[0].Host != "127.0.0.1:5000" {
		t.Errorf("acme lists %+v", l)
	}
	if l := list("beta"); len(l) != 0 {
		t.Errorf("beta lists %+v", l)
	}
	if l := list("admin"); len(l) != 1 || l[0].Host != "ghcr.io" {
		t.Errorf("the admins list %+v", l)
	}
	if got := call(t, a, "DELETE", "/api/v1/registries/127.0.0.1:5000", w.secrets["beta"], nil, "").Code; got != http.StatusNotFound {
		t.Errorf("beta logging acme out: %d", got)
	}
	for _, c := range []struct{ host, body string }{
		{"not-a-host", `{"username": "u", "password": "p"}`},
		{"ghcr.io", `{"username": "u"}`},
		{"ghcr.io", `{"password": "p"}`},
		{"ghcr.io", `{"username": "u", "password": "p", "email": "x"}`},
	} {
		if got := login("acme", c.host, c.body); got != http.StatusBadRequest {
			t.Errorf("login to %s with %s: %d, want 400", c.host, c.body, got)
		}
	}
	if got := call(t, a, "DELETE", "/api/v1/registries/127.0.0.1:5000", w.secrets["acme"], nil, "").Code; got != http.StatusNoContent {
		t.Errorf("acme logging out: %d", got)
	}
}
