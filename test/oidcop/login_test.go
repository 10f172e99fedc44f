package oidcop

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestLoginPageGolden(t *testing.T) {
	tests := []struct {
		name   string
		status int
		page   loginPage
	}{
		{name: "login", status: http.StatusOK, page: loginPage{Action: "/login", ID: "REQUEST-ID", Client: "aim"}},
		{name: "login-hint", status: http.StatusOK, page: loginPage{Action: "/oidc/login", ID: "REQUEST-ID", Client: "aim", Username: "alice"}},
		{
			name:   "login-refused",
			status: http.StatusUnauthorized,
			page:   loginPage{Action: "/login", ID: "REQUEST-ID", Client: "<aim>", Username: `"alice"`, Error: "Wrong username or password."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			renderLogin(w, tt.status, tt.page)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			parseLoginForm(t, w.Body.String())
			golden(t, filepath.Join("testdata", tt.name+".html"), w.Body.String())
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to rewrite it):\n%s", path, got)
	}
}

func TestLoginUnknownRequest(t *testing.T) {
	r := newRP(t)
	s := r.start(Config{})
	for _, q := range []string{"", "?id=nothing"} {
		resp, body := r.get(s.Issuer + loginPath + q)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "unknown or already finished") {
			t.Errorf("GET %s%s: %s, want 400 saying the request is unknown:\n%s", loginPath, q, resp.Status, body)
		}
	}
}
