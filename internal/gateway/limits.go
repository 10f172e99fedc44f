package gateway

import (
	"cmp"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// Limits protect one solution. Zero values mean no limit.
type Limits struct {
	// RPS is the sustained requests per second allowed per client IP.
	RPS float64
	// Burst is how many requests a client may send at once before RPS
	// applies; zero with an RPS means max(1, RPS).
	Burst int
	// Body caps a request body in bytes.
	Body int64
}

// bucket is a token bucket kept as the generic cell rate algorithm's
// "theoretical arrival time": one atomic word per client, so a client's
// requests never wait on a lock, and a full bucket is just a time in the
// past.
type bucket struct {
	tat atomic.Int64 // Unix nanoseconds
}

// take admits one request at now, or says how long until one would be
// admitted.
func (b *bucket) take(now int64, interval, tolerance int64) (bool, time.Duration) {
	for {
		tat := b.tat.Load()
		next := max(tat, now) + interval
		if over := next - now - tolerance; over > 0 {
			return false, time.Duration(over)
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}

// giveBack undoes one take: for a request admitted but then served by
// another path, which takes its own.
func (b *bucket) giveBack(interval int64) {
	b.tat.Add(-interval)
}

// limiter holds one solution's buckets by client address.
type limiter struct {
	rps                 float64
	interval, tolerance int64 // nanoseconds
	buckets             sync.Map
	// count and nextSweep bound the map: buckets that have filled up
	// again are dropped, at most once a minute and only when new clients
	// arrive.
	count     atomic.Int64
	nextSweep atomic.Int64
}

func newLimiter(l Limits) *limiter {
	if l.RPS <= 0 {
		return nil
	}
	burst := l.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(l.RPS)))
	}
	iv := int64(float64(time.Second) / l.RPS)
	return &limiter{rps: l.RPS, interval: iv, tolerance: iv * int64(burst)}
}

// allow admits a request from client, or returns how long it should wait.
func (l *limiter) allow(client netip.Addr, now time.Time) (bool, time.Duration) {
	v, ok := l.buckets.Load(client)
	if !ok {
		v, ok = l.buckets.LoadOrStore(client, new(bucket))
		if !ok {
			l.added(now)
		}
	}
	return v.(*bucket).take(now.UnixNano(), l.interval, l.tolerance)
}

// giveBack undoes an admission of allow's for client.
func (l *limiter) giveBack(client netip.Addr) {
	if v, ok := l.buckets.Load(client); ok {
		v.(*bucket).giveBack(l.interval)
	}
}

const sweepEvery = time.Minute

func (l *limiter) added(now time.Time) {
	l.count.Add(1)
	next := l.nextSweep.Load()
	if now.UnixNano() < next || !l.nextSweep.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		return
	}
	go l.sweep(now.UnixNano())
}

// sweep drops the buckets of clients that could send a full burst again:
// forgetting them changes nothing.
func (l *limiter) sweep(now int64) {
	l.buckets.Range(func(k, v any) bool {
		if v.(*bucket).tat.Load() <= now {
			l.buckets.Delete(k)
			l.count.Add(-1)
		}
		return true
	})
}

// retryAfter is the Retry-After value for a wait: whole seconds, at least 1.
func retryAfter(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// Proxies are the addresses whose X-Forwarded-For aim believes.
type Proxies []netip.Prefix

// ParseProxies reads a comma-separated list of addresses and CIDR
// prefixes, as --trusted-proxies takes it.
func ParseProxies(s string) (Proxies, error) {
	var out Proxies
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (ps Proxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// trustsPeer is true when r came from a trusted proxy.
func (ps Proxies) trustsPeer(r *http.Request) bool {
	if len(ps) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ps.trusts(ap.Addr())
}

// clientIP is the address of whoever sent r: the peer, unless the peer is
// a trusted proxy, in which case the rightmost X-Forwarded-For entry that
// isn't one (entries further left are whatever the client claimed).
func (ps Proxies) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap()
	if len(ps) == 0 || !ps.trusts(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		for h != "" {
			var f string
			if j := strings.LastIndexByte(h, ','); j >= 0 {
				f, h = h[j+1:], h[:j]
			} else {
				f, h = h, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(f))
			if err != nil {
				return peer // a garbled chain: believe only what we saw
			}
			if !ps.trusts(a) {
				return a.Unmap()
			}
			peer = a.Unmap()
		}
	}
	return peer
}

// ResolveLimits fills a manifest's unset limits from the platform's
// defaults def and bounds them by its caps cp (zero fields: none). The
// Kubernetes gateway resolves a Solution's limits with it too, so both
// platforms treat a manifest alike.
func ResolveLimits(l, def, cp spec.Limits) Limits {
	if l.RPS == 0 {
		l.RPS, l.Burst = def.RPS, cmp.Or(l.Burst, def.Burst)
	}
	if l.Body == 0 {
		l.Body = def.Body
	}
	if cp.RPS > 0 && (l.RPS == 0 || l.RPS > cp.RPS) {
		l.RPS = cp.RPS
	}
	if cp.Burst > 0 && (l.Burst == 0 || l.Burst > cp.Burst) {
		l.Burst = cp.Burst
	}
	if cp.Body > 0 && (l.Body == 0 || l.Body > cp.Body) {
		l.Body = cp.Body
	}
	return Limits{RPS: l.RPS, Burst: l.Burst, Body: int64(l.Body)}
}
