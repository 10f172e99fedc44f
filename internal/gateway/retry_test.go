package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/testlog"
)

// readyWaker wakes a solution by routing it to addr at once.
type readyWaker struct {
	g    *Gateway
	addr string
}

func (w readyWaker) Wake(_ context.Context, name string) error {
	w.g.Routes.Set(RouteSpec{Name: name, State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{w.addr}}}})
	return nil
}

// TestHeldRequestRetry: issue 20's safety net. A request that waited for
// a wake and gets a 502, 503 or 504 at once is sent again, once, when it
// is a GET or HEAD; anything else gets the solution's answer unchanged.
func TestHeldRequestRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		body   string
		// state is the route's when the request comes: sleeping (the
		// request wakes it), starting (the test routes it once the
		// request is held), or "" for ready.
		state State
		// answers are the solution's first statuses; later ones are 200.
		answers []int
		want    int
		asked   int64
		retried int // the status counted as retried, 0 for none
	}{
		{name: "a held GET answered 503 is sent again", method: http.MethodGet, state: StateSleeping, answers: []int{503}, want: 200, asked: 2, retried: 503},
		// A HEAD wakes nothing, but waits for a solution that is starting.
		{name: "a held HEAD answered 502 is sent again", method: http.MethodHead, state: StateStarting, answers: []int{502}, want: 200, asked: 2, retried: 502},
		{name: "a held GET answered 504 is sent again", method: http.MethodGet, state: StateSleeping, answers: []int{504}, want: 200, asked: 2, retried: 504},
		{name: "only once", method: http.MethodGet, state: StateSleeping, answers: []int{503, 503}, want: 503, asked: 2, retried: 503},
		{name: "a held POST gets the solution's 503", method: http.MethodPost, body: "x", state: StateSleeping, answers: []int{503}, want: 503, asked: 1},
		{name: "a held POST without a body too", method: http.MethodPost, state: StateSleeping, answers: []int{503}, want: 503, asked: 1},
		{name: "a 500 is the solution's answer", method: http.MethodGet, state: StateSleeping, answers: []int{500}, want: 500, asked: 1},
		{name: "a GET that was not held gets the 503", method: http.MethodGet, answers: []int{503}, want: 503, asked: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked atomic.Int64
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				if n := int(asked.Add(1)); n <= len(tc.answers) {
					w.Header().Set("X-Attempt", "first")
					http.Error(w, "not ready: opening storage", tc.answers[n-1])
					return
				}
				w.Write([]byte("ok"))
			}))
			defer backend.Close()
			addr := strings.TrimPrefix(backend.URL, "http://")
			g := New(Config{Logger: testlog.Logger(t, slog.LevelDebug)})
			g.heldRetryPause = 10 * time.Millisecond
			g.SetWaker(readyWaker{g, addr})
			if tc.state == "" {
				readyWaker{g, addr}.Wake(context.Background(), "s")
			} else {
				g.Routes.Set(RouteSpec{Name: "s", State: tc.state, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})
			}
			if tc.state == StateStarting {
				go func() {
					for g.Routes.lookup("s").pending.Load() == 0 {
						time.Sleep(time.Millisecond)
					}
					readyWaker{g, addr}.Wake(context.Background(), "s")
				}()
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, "http://s.localhost/api/v1/query", body)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			if rec.Code != tc.want || asked.Load() != tc.asked {
				t.Errorf("got %d after %d requests to the solution, want %d after %d", rec.Code, asked.Load(), tc.want, tc.asked)
			}
			if tc.want == 200 && (rec.Header().Get("X-Attempt") != "" || tc.method == http.MethodGet && rec.Body.String() != "ok") {
				t.Errorf("the dropped answer leaked: headers %v, body %q", rec.Header(), rec.Body.String())
			}
			if tc.want == 503 && tc.asked == 1 && !strings.Contains(rec.Body.String(), "opening storage") {
				t.Errorf("the solution's 503 was changed: %q", rec.Body.String())
			}
			if tc.state != "" && !strings.HasPrefix(rec.Header().Get("Server-Timing"), "wake;dur=") {
				t.Errorf("Server-Timing %q, want the wake's", rec.Header().Get("Server-Timing"))
			}
			st := &g.Routes.lookup("s").stats
			for i := range st.retried {
				want := uint64(0)
				if tc.retried == http.StatusBadGateway+i {
					want = 1
				}
				if got := st.retried[i].Load(); got != want {
					t.Errorf("retried[%d] = %d, want %d", http.StatusBadGateway+i, got, want)
				}
			}
		})
	}
}

// TestHeldWriterPassesLateAnswers: an answer that comes after the window
// is the solution's own, whatever its status.
func TestHeldWriterPassesLateAnswers(t *testing.T) {
	rec := httptest.NewRecorder()
	w := getWriter(rec)
	defer putWriter(w)
	hw := &heldWriter{w: w, h: http.Header{}, until: time.Now().Add(-time.Millisecond)}
	hw.Header().Set("Retry-After", "5")
	hw.WriteHeader(http.StatusServiceUnavailable)
	hw.Write([]byte("busy"))
	if hw.dropped != 0 || rec.Code != http.StatusServiceUnavailable || rec.Body.String() != "busy" || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("dropped %d; passed %d %q %v", hw.dropped, rec.Code, rec.Body.String(), rec.Header())
	}
}
