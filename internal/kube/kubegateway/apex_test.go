package kubegateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aimhub/aim/internal/metrics"
	"github.com/aimhub/aim/internal/testlog"
)

// TestApexGuardPaths: the apex proxies the API, but not the questions the
// gateway's RemoteGuard asks it directly; a browser's sign-in redirect
// passes.
func TestApexGuardPaths(t *testing.T) {
	var reached atomic.Value
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(r.Method + " " + r.URL.RequestURI())
		w.WriteHeader(299)
	}))
	defer api.Close()
	var draining atomic.Bool
	apex, err := apexMux(api.URL, "aim.example", nil, metrics.New(), &draining, testlog.Logger(t, slog.LevelDebug))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/auth/guard/token", http.StatusNotFound},
		{http.MethodPost, "/auth/guard/session", http.StatusNotFound},
		{http.MethodPost, "/auth/guard/redeem", http.StatusNotFound},
		{http.MethodPost, "/auth/guard/signin", http.StatusNotFound},
		{http.MethodGet, "/auth/guard/signin?solution=shop&return=%2F", 299},
		{http.MethodGet, "/api/v1/solutions", 299},
		{http.MethodPost, "/auth/signin", 299},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			reached.Store("")
			rec := httptest.NewRecorder()
			apex.ServeHTTP(rec, httptest.NewRequest(tc.method, "http://aim.example"+tc.path, strings.NewReader("{}")))
			if rec.Code != tc.status {
				t.Errorf("%d, want %d", rec.Code, tc.status)
			}
			if got, want := reached.Load().(string) != "", tc.status == 299; got != want {
				t.Errorf("reached the API: %v, want %v", got, want)
			}
		})
	}
}
