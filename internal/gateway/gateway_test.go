package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSolutionName(t *testing.T) {
	g := New(Config{Domain: "example.org"})
	for _, tc := range []struct{ host, want string }{
		{"hello.example.org", "hello"},
		{"hello.example.org:8080", "hello"},
		{"HELLO.Example.org.", "hello"},
		{"example.org", ""},
		{"a.b.example.org", ""},
		{"hello.other.org", ""},
		{"127.0.0.1:8080", ""},
	} {
		if got := g.solutionName(tc.host); got != tc.want {
			t.Errorf("solutionName(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func TestPickLongestPrefix(t *testing.T) {
	g := New(Config{})
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{
		{Component: "web", Paths: []string{"/"}, Addrs: []string{"10.0.0.1:8080"}},
		{Component: "api", Paths: []string{"/api"}, Addrs: []string{"10.0.0.2:8080"}},
		{Component: "docs", Paths: []string{"/api/docs/"}, Addrs: []string{"10.0.0.3:8080"}},
	}})
	snap := g.Routes.lookup("s").snap.Load()
	for _, tc := range []struct{ path, want string }{
		{"/", "web"},
		{"/index.html", "web"},
		{"/api", "api"},
		{"/api/x", "api"},
		{"/apix", "web"}, // a prefix matches whole path segments only
		{"/api/docs/", "docs"},
		{"/api/docs/a", "docs"},
	} {
		if got := snap.pick(tc.path); got == nil || got.component != tc.want {
			t.Errorf("pick(%q) = %v, want %s", tc.path, got, tc.want)
		}
	}
}

// Regression guard for the hold: a request for a starting solution waits
// for the route to change instead of failing, and a full queue answers 503.
func TestHoldUntilReadyAndQueueLimit(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer backend.Close()
	g := New(Config{MaxPending: 1, HoldTimeout: 10 * time.Second})
	g.Routes.Set(RouteSpec{Name: "s", State: StateStarting, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}}}})

	done := make(chan *httptest.ResponseRecorder)
	go func() {
		req := httptest.NewRequest(http.MethodGet, "http://s.localhost/", nil)
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, req)
		done <- rec
	}()
	// Wait until the first request is held, then a second one overflows.
	deadline := time.Now().Add(5 * time.Second)
	for g.Routes.lookup("s").pending.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first request was not held")
		}
		time.Sleep(time.Millisecond)
	}
	req := httptest.NewRequest(http.MethodGet, "http://s.localhost/", nil)
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("overflow got %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	g.Routes.Set(RouteSpec{Name: "s", State: StateReady, Upstreams: []Upstream{{Component: "web", Paths: []string{"/"}, Addrs: []string{strings.TrimPrefix(backend.URL, "http://")}}}})
	select {
	case rec := <-done:
		if rec.Code != 200 || rec.Body.String() != "ok" || !strings.HasPrefix(rec.Header().Get("Server-Timing"), "wake;dur=") {
			t.Errorf("held request got %d %q, Server-Timing %q", rec.Code, rec.Body.String(), rec.Header().Get("Server-Timing"))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held request was not released when the route became ready")
	}
}

func TestBackendPicksLeastLoaded(t *testing.T) {
	u := &upstream{}
	for _, a := range []string{"a", "b", "c"} {
		u.backends = append(u.backends, &backend{addr: a})
	}
	// Idle replicas take turns.
	seen := map[string]int{}
	for range 30 {
		seen[u.backend().addr]++
	}
	if seen["a"] != 10 || seen["b"] != 10 || seen["c"] != 10 {
		t.Errorf("idle replicas were picked %v times, want 10 each", seen)
	}
	// A busy replica is avoided while another has room.
	u.backends[0].inflight.Store(5)
	u.backends[1].inflight.Store(1)
	u.backends[2].inflight.Store(3)
	for range 10 {
		if got := u.backend().addr; got != "b" {
			t.Fatalf("picked %s, want the least loaded b", got)
		}
	}
}

func TestPeakSeesShortBursts(t *testing.T) {
	tbl := newTable(func(*url.URL) *httputil.ReverseProxy { return nil })
	tbl.Set(RouteSpec{Name: "s", State: StateReady})
	r := tbl.lookup("s")
	for range 7 {
		r.enter()
	}
	for range 7 {
		r.leave()
	}
	r.enter()
	if got := tbl.Peak("s"); got != 7 {
		t.Errorf("peak = %d, want 7 (the burst that has ended)", got)
	}
	if got := tbl.Peak("s"); got != 1 {
		t.Errorf("peak after a read = %d, want 1 (what is still in flight)", got)
	}
	if got := tbl.Inflight("s"); got != 1 {
		t.Errorf("inflight = %d, want 1", got)
	}
}

func TestBucket(t *testing.T) {
	sec := int64(time.Second)
	for _, tc := range []struct {
		name   string
		limits Limits
		at     []int64 // request times in ms
		want   string  // + admitted, - refused
		back   int     // 1 + the index of a request given back after it was admitted
	}{
		{"burst then refuse", Limits{RPS: 1, Burst: 3}, []int64{0, 0, 0, 0}, "+++-", 0},
		{"refills at the rate", Limits{RPS: 1, Burst: 2}, []int64{0, 0, 0, 999, 1000, 1000}, "++--+-", 0},
		{"steady at the rate passes", Limits{RPS: 10, Burst: 1}, []int64{0, 100, 200, 300, 350}, "++++-", 0},
		{"burst defaults to the rate", Limits{RPS: 2}, []int64{0, 0, 0}, "++-", 0},
		{"a refused request costs nothing", Limits{RPS: 1, Burst: 1}, []int64{0, 500, 999, 1000}, "+--+", 0},
		{"a request given back costs nothing", Limits{RPS: 1, Burst: 1}, []int64{0, 0, 0}, "++-", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLimiter(tc.limits)
			b := new(bucket)
			var got strings.Builder
			for i, ms := range tc.at {
				ok, wait := b.take(ms*int64(time.Millisecond)+sec, l.interval, l.tolerance)
				if ok {
					got.WriteByte('+')
					if i+1 == tc.back {
						b.giveBack(l.interval)
					}
				} else {
					got.WriteByte('-')
					if wait <= 0 {
						t.Errorf("refused at %dms without a wait", ms)
					}
				}
			}
			if got.String() != tc.want {
				t.Errorf("got %s, want %s", got.String(), tc.want)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParseProxies("10.0.0.0/8, 192.168.1.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		proxies      Proxies
		want         string
	}{
		{"no proxies trusted: the peer", "203.0.113.9:5555", []string{"1.2.3.4"}, nil, "203.0.113.9"},
		{"untrusted peer's header is ignored", "203.0.113.9:5555", []string{"1.2.3.4"}, trusted, "203.0.113.9"},
		{"trusted peer: the last hop", "10.1.2.3:5555", []string{"1.2.3.4"}, trusted, "1.2.3.4"},
		{"spoofed entries left of the last untrusted hop are ignored", "10.1.2.3:5555", []string{"6.6.6.6, 1.2.3.4"}, trusted, "1.2.3.4"},
		{"a chain of trusted proxies", "10.1.2.3:5555", []string{"1.2.3.4, 192.168.1.1", "10.9.9.9"}, trusted, "1.2.3.4"},
		{"all trusted: the leftmost", "10.1.2.3:5555", []string{"10.2.2.2"}, trusted, "10.2.2.2"},
		{"garbled header: the trusted peer", "10.1.2.3:5555", []string{"1.2.3.4, nonsense"}, trusted, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, trusted, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, x := range tc.xff {
				r.Header.Add("X-Forwarded-For", x)
			}
			if got := tc.proxies.clientIP(r).String(); got != tc.want {
				t.Errorf("client = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestContainsFold(t *testing.T) {
	for _, tc := range []struct {
		s, sub string
		want   bool
	}{
		{"Mozilla/5.0 (compatible; Googlebot/2.1)", "bot", true},
		{"KUBE-PROBE/1.32", "kube-probe", true},
		{"curl/8.0", "bot", false},
		{"bo", "bot", false},
		{"", "bot", false},
		{"UptimeRobot", "uptime", true},
	} {
		if got := containsFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v", tc.s, tc.sub, got)
		}
	}
}

func TestApexAnswersItsOwnNamesOnly(t *testing.T) {
	apex := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "apex") })
	g := New(Config{Domain: "aim.example.com", Apex: apex})
	for host, want := range map[string]int{
		"aim.example.com":             200,
		"AIM.example.com.:8080":       200,
		"127.0.0.1:8080":              200,
		"[::1]:8080":                  200,
		"10.1.2.3":                    200, // a pod's IP: the kubelet's probes
		"engine.evil.aim.example.com": 421,
		"attacker.example":            421, // a name pointed here by DNS
		"localhost:8080":              421,
		"":                            421,
		"example.com":                 421,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/api/v1/solutions", nil)
		req.Host = host
		g.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}
