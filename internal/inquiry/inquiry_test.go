package inquiry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/store"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	for _, tc := range []struct {
		name string
		f    Form
		want []string // "field: part of the message"
	}{
		{"good", Form{Name: " Ann ", Organisation: "Org", Email: "ann@example.com", Message: "Hello\nthere"}, nil},
		{"empty", Form{}, []string{"name: is required", "email: is required", "message: is required"}},
		{"bad e-mail", Form{Name: "A", Email: "ann at example", Message: "m"}, []string{"email: \"ann at example\" is not an e-mail address"}},
		{"display name is not an address", Form{Name: "A", Email: "Ann <ann@example.com>", Message: "m"}, []string{"email:"}},
		{"no dot in the domain", Form{Name: "A", Email: "ann@localhost", Message: "m"}, []string{"email:"}},
		{"a megabyte message", Form{Name: "A", Email: "a@b.co", Message: long}, []string{"message: is 1048576 characters; at most 5000"}},
		{"two-line name", Form{Name: "A\nB", Email: "a@b.co", Message: "m"}, []string{"name: is one line"}},
		{"control characters", Form{Name: "A", Email: "a@b.co", Message: "m\x00"}, []string{"message: contains control characters"}},
		{"invalid UTF-8", Form{Name: "A\xff", Email: "a@b.co", Message: "m"}, []string{"name: is not valid UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs := Validate(&tc.f)
			if len(probs) != len(tc.want) {
				t.Fatalf("problems %v, want %v", probs, tc.want)
			}
			for i, p := range probs {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %q, want %q…", p.Error(), tc.want[i])
				}
			}
		})
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 3, time.Hour)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	steps := []struct {
		client, sol string
		ok          bool
		which       string
	}{
		{"a", "s", true, ""}, {"a", "s", true, ""}, {"a", "s", false, "client"},
		{"b", "s", true, ""}, {"c", "s", false, "solution"}, {"c", "t", true, ""},
	}
	for i, st := range steps {
		ok, which, retry := l.Allow(st.client, st.sol)
		if ok != st.ok || which != st.which || (!ok && retry <= 0) {
			t.Errorf("step %d: %v %q %s, want %v %q", i, ok, which, retry, st.ok, st.which)
		}
	}
	now = now.Add(time.Hour)
	if ok, _, _ := l.Allow("a", "s"); !ok {
		t.Error("still refused after the window")
	}
}

func TestSignature(t *testing.T) {
	body := []byte(`{"id":1}`)
	now := time.Unix(1700000000, 0)
	h := Sign("s3cret", now, body)
	if err := VerifySignature("s3cret", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]error{
		"other secret": VerifySignature("other", h, body, now, 5*time.Minute),
		"other body":   VerifySignature("s3cret", h, []byte(`{"id":2}`), now, 5*time.Minute),
		"too old":      VerifySignature("s3cret", h, body, now.Add(time.Hour), 5*time.Minute),
		"garbage":      VerifySignature("s3cret", "v1=abc", body, now, 5*time.Minute),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestDelivery runs the Deliverer against a real store and a receiver
// that fails its first delivery: the inquiry arrives signed on the retry.
func TestDelivery(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	var got []Payload
	var sigErrs []error
	calls := 0
	var secret string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		sigErrs = append(sigErrs, VerifySignature(secret, r.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute))
		var p Payload
		_ = json.Unmarshal(body, &p)
		got = append(got, p)
	}))
	defer recv.Close()
	if err := st.PutProvider(ctx, &store.Provider{Name: "acme", Webhook: recv.URL + "/hook"}); err != nil {
		t.Fatal(err)
	}
	if secret, err = st.WebhookSecret(ctx, "acme", false); err != nil {
		t.Fatal(err)
	}
	q := &store.Inquiry{Solution: "shop", Owner: "acme", Name: "Ann", Email: "ann@example.com", Message: "hello"}
	if err := st.AddInquiry(ctx, q, true); err != nil {
		t.Fatal(err)
	}
	d := &Deliverer{Store: st, Every: 20 * time.Millisecond, Backoff: []time.Duration{50 * time.Millisecond},
		AllowAddr: func(a netip.Addr) bool { return a.IsLoopback() }}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- d.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		qs, _ := st.ListInquiries(ctx, store.InquiryFilter{Solution: "shop"})
		if qs[0].Delivery == store.DeliveryDelivered || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	qs, _ := st.ListInquiries(ctx, store.InquiryFilter{Solution: "shop"})
	if qs[0].Delivery != store.DeliveryDelivered || qs[0].Attempts != 2 {
		t.Fatalf("delivery %s after %d attempts (last error %q), want delivered after 2", qs[0].Delivery, qs[0].Attempts, qs[0].LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].ID != q.ID || got[0].Message != "hello" || got[0].Event != "inquiry" {
		t.Errorf("received %+v", got)
	}
	for _, e := range sigErrs {
		if e != nil {
			t.Errorf("signature: %v", e)
		}
	}
}

// TestDeliveryRefusesLoopback: without AllowAddr a receiver on loopback
// is refused at connect time even if its name is not an address, and the
// delivery is given up after the last retry.
func TestDeliveryRefusesLoopback(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hit := false
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer recv.Close()
	// A name that resolves to loopback but is no literal: only the dialer
	// can catch it. (The store only checks it is http(s).)
	u := strings.Replace(recv.URL, "127.0.0.1", "localtest.invalid", 1)
	_ = st.PutProvider(ctx, &store.Provider{Name: "acme", Webhook: u})
	_ = st.AddInquiry(ctx, &store.Inquiry{Solution: "shop", Owner: "acme", Name: "A", Email: "a@b.co", Message: "m"}, true)
	d := &Deliverer{Store: st, Backoff: []time.Duration{}}
	d.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return safeDialer(nil).DialContext(ctx, network, strings.TrimPrefix(recv.URL, "http://"))
	}}}
	d.Logger = slogDiscard()
	d.Once(ctx)
	qs, _ := st.ListInquiries(ctx, store.InquiryFilter{})
	if hit || qs[0].Delivery != store.DeliveryFailed || !strings.Contains(qs[0].LastError, "loopback") {
		t.Errorf("hit %v, %s: %q", hit, qs[0].Delivery, qs[0].LastError)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
