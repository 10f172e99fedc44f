package router

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// TestProbe: the wake's own probe of a new pod judges it by the
// component's readiness rule, as the Docker runtime does (issue 20: a
// server that answers / long before its API).
func TestProbe(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		c    spec.Component
		// readyAsked is how often the probe asks /-/ready, which answers
		// 503 three times and then 204; / answers 200 throughout.
		readyAsked int64
	}{
		{"default rule: / below 500", spec.Component{Public: &yes}, 0},
		{"ready.path must answer 2xx", spec.Component{Public: &yes, Ready: spec.Ready{Path: "/-/ready"}}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/":
				case r.URL.Path != "/-/ready":
					w.WriteHeader(http.StatusNotFound)
				case asked.Add(1) <= 3:
					w.WriteHeader(http.StatusServiceUnavailable)
				default:
					w.WriteHeader(http.StatusNoContent)
				}
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			answered := make(chan string, 1)
			addr := strings.TrimPrefix(srv.URL, "http://")
			go probe(ctx, addr, tc.c, answered)
			select {
			case a := <-answered:
				if a != addr {
					t.Errorf("answered %q, want %q", a, addr)
				}
			case <-ctx.Done():
				t.Fatal("the probe never called the pod ready")
			}
			if n := asked.Load(); n != tc.readyAsked {
				t.Errorf("/-/ready was asked %d times, want %d", n, tc.readyAsked)
			}
		})
	}
}
