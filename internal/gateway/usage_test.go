package gateway

import (
	"io"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type usageCall struct {
	solution string
	client   netip.Addr
	page     bool
	status   int
}

type fakeUsage struct {
	mu    sync.Mutex
	calls []usageCall
}

func (f *fakeUsage) Request(s string, c netip.Addr, page bool, status int, _ time.Time) {
	f.mu.Lock()
	f.calls = append(f.calls, usageCall{s, c, page, status})
	f.mu.Unlock()
}

// TestUsageOnBothPaths: every request but a bot's is told, a page view
// apart from an API call, on the fast path and on net/http's alike.
func TestUsageOnBothPaths(t *testing.T) {
	u := &fakeUsage{}
	g := New(Config{Domain: "localhost", Usage: u})
	routeTo(g, echoBackend(t), Limits{})
	addr, _, _ := fastServer(t, g)
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, tc := range []struct {
		name, method, accept, ua string
		want                     *usageCall
	}{
		{"page, fast path", "GET", "text/html,*/*", "Mozilla/5.0", &usageCall{"s", netip.MustParseAddr("127.0.0.1"), true, 200}},
		{"API call, fast path", "POST", "application/json", "curl/8", &usageCall{"s", netip.MustParseAddr("127.0.0.1"), false, 200}},
		{"page, net/http (an odd method)", "OPTIONS", "text/html", "Mozilla/5.0", &usageCall{"s", netip.MustParseAddr("127.0.0.1"), false, 200}},
		{"a bot", "GET", "text/html", "Googlebot/2.1", nil},
		{"HEAD", "HEAD", "text/html", "Mozilla/5.0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u.mu.Lock()
			u.calls = nil
			u.mu.Unlock()
			req, _ := http.NewRequest(tc.method, "http://"+addr+"/", nil)
			req.Host = "s.localhost"
			req.Header.Set("Accept", tc.accept)
			req.Header.Set("User-Agent", tc.ua)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// The gateway tells Usage once the answer is out: wait for it
			// (or, for a bot, long enough that a call would have come).
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				u.mu.Lock()
				n := len(u.calls)
				u.mu.Unlock()
				if n > 0 || (tc.want == nil && time.Until(deadline) < 1900*time.Millisecond) {
					break
				}
			}
			u.mu.Lock()
			defer u.mu.Unlock()
			switch {
			case tc.want == nil && len(u.calls) != 0:
				t.Errorf("told %+v", u.calls)
			case tc.want != nil && (len(u.calls) != 1 || u.calls[0] != *tc.want):
				t.Errorf("told %+v, want %+v", u.calls, *tc.want)
			}
		})
	}
}
