// Package usage counts, per solution and day, what a provider wants to
// know of its visitors: page views, distinct visitors, API requests,
// errors, wakes and their time, and the last visit. The gateway tells a
// Recorder of each request; the Recorder adds them up in memory and
// writes them to the store every FlushInterval, so a crash loses at most
// that interval's counts.
//
// Distinct visitors are counted without storing who they are: a visitor
// is the client's address, kept only as an HMAC under the day's key. The
// key is random, kept in the store while its day is open (so a restart
// does not count today's visitors twice), and deleted with that day's
// hashes once the day is closed, leaving only the count: after that no
// one, the platform included, can tell whose visits they were.
package usage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimhub/aim/internal/store"
)

// FlushInterval is how often counts are written; what a crash loses.
const FlushInterval = 10 * time.Second

// recentSlots is the size of a solution's lock-free cache of visitors.
const recentSlots = 1024

// maxVisitorsPerDay bounds the memory one solution's distinct visitors
// take in a day; past it, new visitors are still counted in the store
// (their hashes are written), only the in-memory de-duplication stops.
const maxVisitorsPerDay = 200_000

// Store is what the Recorder needs of the store.
type Store interface {
	UsageKey(ctx context.Context, day string) ([]byte, error)
	AddUsage(ctx context.Context, day, solution string, c store.UsageCounts, visitors [][]byte) error
	CloseUsageDays(ctx context.Context, before string) error
}

// Recorder adds requests up per solution and flushes them to the store.
type Recorder struct {
	st  Store
	log *slog.Logger
	now func() time.Time

	sols sync.Map // solution name -> *counts
	// seed keys the in-memory de-duplication of today's visitors; it never
	// leaves the process.
	seed maphash.Seed

	mu  sync.Mutex // guards day and key
	day string
	key []byte
}

type counts struct {
	views, api, errors, wakes, wakeMillis atomic.Int64
	last                                  atomic.Int64 // Unix ms of the last visit

	// recent holds hashes of today's visitors seen lately, one a slot,
	// so that a visitor's every request after its first costs a load and
	// no lock (the gateway's fast path calls Request for each).
	recent [recentSlots]atomic.Uint64

	mu      sync.Mutex
	seen    map[uint64]struct{} // today's visitors, de-duplicated in memory
	newHash [][]byte            // visitors to write at the next flush
	seenDay string
}

// New makes a Recorder; call Run to flush.
func New(st Store, log *slog.Logger) *Recorder {
	if log == nil {
		log = slog.Default()
	}
	return &Recorder{st: st, log: log, now: time.Now, seed: maphash.MakeSeed()}
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func (r *Recorder) counts(name string) *counts {
	if c, ok := r.sols.Load(name); ok {
		return c.(*counts)
	}
	c, _ := r.sols.LoadOrStore(name, &counts{seen: map[uint64]struct{}{}})
	return c.(*counts)
}

// Request records one request a person or program made to solution from
// client at at: a page view when page (a browser asking for HTML), else
// an API request; an error when status is 5xx. Bots are not to be
// recorded.
func (r *Recorder) Request(solution string, client netip.Addr, page bool, status int, at time.Time) {
	c := r.counts(solution)
	if page {
		c.views.Add(1)
	} else {
		c.api.Add(1)
	}
	if status >= 500 {
		c.errors.Add(1)
	}
	// The last visit is shown to the second: written once a second at
	// most, so that requests on several cores do not pass its cache line
	// back and forth.
	if ms := at.UnixMilli(); ms-c.last.Load() >= 1000 {
		c.last.Store(ms)
	}
	if !client.IsValid() {
		return
	}
	// The day goes into the hash, so yesterday's entries miss today; as
	// a number, so that the common case formats nothing.
	dayNum := at.Unix() / 86400
	h := maphash.Comparable(r.seed, visit{client.Unmap(), dayNum})
	slot := &c.recent[h%recentSlots]
	if slot.Load() == h {
		return
	}
	today := day(at)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seenDay != today {
		clear(c.seen)
		c.seenDay = today
	}
	slot.Store(h)
	if _, ok := c.seen[h]; ok {
		return
	}
	if len(c.seen) < maxVisitorsPerDay {
		c.seen[h] = struct{}{}
	}
	b := client.Unmap().As16()
	c.newHash = append(c.newHash, append([]byte(today+"|"), b[:]...))
}

// visit is what the in-memory de-duplication hashes.
type visit struct {
	addr netip.Addr
	day  int64 // days since 1970, UTC
}

// Wake records a wake of solution that took d.
func (r *Recorder) Wake(solution string, d time.Duration) {
	c := r.counts(solution)
	c.wakes.Add(1)
	c.wakeMillis.Add(d.Milliseconds())
}

// Run flushes every FlushInterval until ctx ends, and once more then.
func (r *Recorder) Run(ctx context.Context) error {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return r.Flush(context.WithoutCancel(ctx))
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Error("writing usage counts", "err", err)
			}
		}
	}
}

// Flush writes what was counted since the last flush.
func (r *Recorder) Flush(ctx context.Context) error {
	now := r.now()
	today := day(now)
	var err error
	r.sols.Range(func(k, v any) bool {
		c := v.(*counts)
		uc := store.UsageCounts{
			Views: c.views.Swap(0), API: c.api.Swap(0), Errors: c.errors.Swap(0),
			Wakes: c.wakes.Swap(0), WakeMillis: c.wakeMillis.Swap(0), LastVisit: c.last.Load(),
		}
		c.mu.Lock()
		raw := c.newHash
		c.newHash = nil
		c.mu.Unlock()
		// Visitors are grouped by the day they came on (a flush may span
		// midnight), each hashed under its day's key.
		byDay := map[string][][]byte{}
		for _, b := range raw {
			d := string(b[:10])
			key, kerr := r.keyFor(ctx, d)
			if kerr != nil {
				err = kerr
				return false
			}
			m := hmac.New(sha256.New, key)
			m.Write(b[11:])
			byDay[d] = append(byDay[d], m.Sum(nil)[:16])
		}
		if uc == (store.UsageCounts{LastVisit: uc.LastVisit}) && len(byDay) == 0 {
			return true
		}
		if e := r.st.AddUsage(ctx, today, k.(string), uc, byDay[today]); e != nil {
			err = e
			return false
		}
		for d, hs := range byDay {
			if d != today {
				if e := r.st.AddUsage(ctx, d, k.(string), store.UsageCounts{}, hs); e != nil {
					err = e
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	// Yesterday and before are closed: their counts stay, their hashes and
	// keys go.
	return r.st.CloseUsageDays(ctx, day(now.Add(-time.Hour)))
}

func (r *Recorder) keyFor(ctx context.Context, d string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.day == d && r.key != nil {
		return r.key, nil
	}
	k, err := r.st.UsageKey(ctx, d)
	if err != nil {
		return nil, err
	}
	r.day, r.key = d, k
	return k, nil
}
