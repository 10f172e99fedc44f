package logincheck

import (
	"context"
	"errors"
	"github.com/aimhub/aim/internal/registry"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeRegistry answers /v2/ as a Distribution registry does: 401 with
// its challenge, 200 to user:pass by Basic, or to the Bearer token its
// realm (/token, on the same server or at realm) gives for user:pass.
type fakeRegistry struct {
	bearer bool
	realm  string // empty: <its own URL>/token
	// authSeen counts requests that carried credentials.
	authSeen atomic.Int32
}

func (f *fakeRegistry) handler(self func() string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		f.authSeen.Add(1)
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "pass" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"secret detail of the server"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"token":"tok-1"}`))
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		if a != "" {
			f.authSeen.Add(1)
		}
		if u, p, ok := r.BasicAuth(); !f.bearer && ok && u == "user" && p == "pass" || f.bearer && a == "Bearer tok-1" {
			_, _ = w.Write([]byte("{}"))
			return
		}
		if f.bearer {
			realm := f.realm
			if realm == "" {
				realm = self() + "/token"
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="fake"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"secret detail of the server"}]}`))
	})
	return mux
}

func TestCheckerLogins(t *testing.T) {
	plainToken := &fakeRegistry{}
	plainTokenSrv := httptest.NewServer(plainToken.handler(nil))
	defer plainTokenSrv.Close()

	for _, tc := range []struct {
		name     string
		reg      *fakeRegistry
		tls      bool
		insecure bool   // the host is named insecure
		password string // user's
		want     string // "" is a kept login; else a part of the error
		refusal  bool   // the error wraps ErrUnauthorized
		noAuth   bool   // no credentials reached the registry
	}{
		{name: "basic over HTTP, named insecure", reg: &fakeRegistry{}, insecure: true, password: "pass"},
		{name: "basic over HTTP, a wrong password", reg: &fakeRegistry{}, insecure: true, password: "wrong",
			want: "refused the login: 401 Unauthorized (UNAUTHORIZED)", refusal: true},
		{name: "basic over HTTP, not named insecure", reg: &fakeRegistry{}, password: "pass",
			want: "not sending a login in plain HTTP", noAuth: true},
		{name: "basic over HTTPS", reg: &fakeRegistry{}, tls: true, password: "pass"},
		{name: "bearer over HTTPS", reg: &fakeRegistry{bearer: true}, tls: true, password: "pass"},
		{name: "bearer over HTTPS, a wrong password", reg: &fakeRegistry{bearer: true}, tls: true, password: "wrong",
			want: "refused the login: 401 Unauthorized (UNAUTHORIZED)", refusal: true},
		{name: "bearer over HTTPS, a realm in plain HTTP", reg: &fakeRegistry{bearer: true, realm: plainTokenSrv.URL + "/token"}, tls: true, password: "pass",
			want: `realm scheme "http" not allowed`, noAuth: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			h := tc.reg.handler(func() string { return srv.URL })
			if tc.tls {
				srv = httptest.NewTLSServer(h)
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "https://"), "http://")
			c := &Checker{Transport: srv.Client().Transport}
			if tc.insecure {
				c.Insecure = []string{host}
			}
			err := c.Check(context.Background(), registry.Login{Host: host, Username: "user", Password: tc.password})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a good login refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret detail") {
				t.Errorf("the error carries the registry's body: %v", err)
			}
			if got := errors.Is(err, registry.ErrUnauthorized); got != tc.refusal {
				t.Errorf("errors.Is(ErrUnauthorized) = %v, want %v: %v", got, tc.refusal, err)
			}
			if n := tc.reg.authSeen.Load() + plainToken.authSeen.Load(); tc.noAuth && n != 0 {
				t.Errorf("%d requests with credentials went out", n)
			}
		})
	}
}
