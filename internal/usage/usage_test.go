package usage

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/store"
)

func TestRecorder(t *testing.T) {
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "aim.db")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	r := New(st, nil)
	r.now = func() time.Time { return now }
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	r.Request("shop", a, true, 200, r.now())
	r.Request("shop", a, false, 200, r.now())
	r.Request("shop", b, false, 503, r.now())
	r.Request("shop", netip.MustParseAddr("::ffff:192.0.2.1"), true, 200, r.now()) // a again, as IPv4-mapped
	r.Wake("shop", 1500*time.Millisecond)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A restart: a new recorder sees a again, today; not a new visitor.
	st.Close()
	st, err = store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r = New(st, nil)
	r.now = func() time.Time { return now.Add(time.Minute) }
	r.Request("shop", a, true, 200, r.now())
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	days, err := st.Usage(ctx, "shop", "2026-12-01")
	if err != nil || len(days) != 1 {
		t.Fatalf("%+v %v", days, err)
	}
	d := days[0]
	if d.Views != 3 || d.API != 2 || d.Errors != 1 || d.Visitors != 2 || d.Wakes != 1 || d.WakeTime != 1500*time.Millisecond ||
		!d.LastVisit.Equal(now.Add(time.Minute)) {
		t.Errorf("%+v", d)
	}
	// The next day: yesterday is closed, its count kept, its hashes gone.
	r.now = func() time.Time { return now.Add(24 * time.Hour) }
	r.Request("shop", a, true, 200, r.now())
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	days, _ = st.Usage(ctx, "shop", "2026-12-01")
	if len(days) != 2 || days[0].Visitors != 2 || days[1].Visitors != 1 {
		t.Errorf("%+v", days)
	}
}
