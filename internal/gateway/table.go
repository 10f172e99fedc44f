package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// State is what the gateway knows of a solution's readiness.
type State string

// The states a route can be in. The controller owns the full state
// machine; the gateway needs only to know whether to proxy, wake, or
// explain.
const (
	StateReady    State = "ready"
	StateStarting State = "starting"
	StateSleeping State = "sleeping"
	StateFailed   State = "failed"
)

// Upstream is one public component: its path prefixes and the replicas
// that serve it.
type Upstream struct {
	Component string
	Paths     []string
	// Addrs are host:port of the ready replicas.
	Addrs []string
}

// RouteSpec is what the controller tells the gateway about a solution.
type RouteSpec struct {
	Name   string
	Title  string
	State  State
	Reason string
	// Hold asks that browsers be held like API clients while the
	// solution wakes, instead of seeing a "starting" page.
	Hold      bool
	Upstreams []Upstream
	Limits    Limits
	// Private solutions are open only to the identities Access admits,
	// besides their Owner (a provider's name; empty for the admins') and
	// the admins; see Guard. The others are open to everyone.
	Private bool
	Owner   string
	Access  spec.Access
}

// route is the gateway's live view of one solution. Requests read it
// without locks: the whole snapshot is swapped atomically.
type route struct {
	name string
	snap atomic.Pointer[snapshot]
	// pending counts requests held while the solution starts or wakes.
	pending atomic.Int64
	// lastActive is when a request (not a bot's) last came or ended, in
	// Unix nanoseconds; the scaler reads it to judge idleness.
	lastActive atomic.Int64
	// inflight counts requests being proxied; peak is the most there were
	// at once since the scaler last looked, which a sample of inflight
	// alone would miss for short requests.
	inflight atomic.Int64
	peak     atomic.Int64
	stats    stats

	// limits are what the limiter was built from; guarded by the
	// table's mu. The limiter is kept across route changes so that its
	// buckets survive them.
	limits Limits
	lim    atomic.Pointer[limiter]
}

// setLimits replaces the limiter when the limits changed. Called with the
// table's mu held.
func (r *route) setLimits(l Limits) {
	if r.limits == l && (r.lim.Load() != nil) == (l.RPS > 0) {
		return
	}
	r.limits = l
	r.lim.Store(newLimiter(l))
}

// enter counts a request in; call leave when it is done.
func (r *route) enter() {
	n := r.inflight.Add(1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (r *route) leave() { r.inflight.Add(-1) }

// active records activity at now (Unix nanoseconds). Idleness is judged
// in seconds, so the shared word is written at most every few
// milliseconds: under load, every request writing it would keep its cache
// line moving between cores for nothing.
func (r *route) active(now int64) {
	if now-r.lastActive.Load() > int64(5*time.Millisecond) {
		r.lastActive.Store(now)
	}
}

type snapshot struct {
	title  string
	state  State
	reason string
	hold   bool
	// body caps request bodies, 0 for no cap.
	body int64
	// changed is closed when a newer snapshot replaces this one, so that
	// held requests wake up and look again (Knative's activator does the
	// same with its capacity channel).
	changed chan struct{}
	// prefixes, longest first, each with the upstream that owns it.
	prefixes []prefix
	privateRoute
}

type prefix struct {
	path string
	up   *upstream
}

type upstream struct {
	component string
	backends  []*backend
	next      atomic.Uint32
}

type backend struct {
	addr     string
	proxy    *httputil.ReverseProxy // for upgrades and 100-continue
	pool     connPool               // for everything else
	inflight atomic.Int64
}

// pick chooses the prefix owner for path p.
func (s *snapshot) pick(p string) *upstream {
	for _, pr := range s.prefixes {
		if pr.path == "/" || p == pr.path || strings.HasPrefix(p, pr.path) && (strings.HasSuffix(pr.path, "/") || p[len(pr.path)] == '/') {
			return pr.up
		}
	}
	return nil
}

// backend picks the replica with the fewest requests in flight, looking
// from a rotating start so that equally loaded replicas take turns; nil
// when none is ready. A solution has a handful of replicas, so looking at
// all of them costs less than the slow replica it avoids.
func (u *upstream) backend() *backend {
	n := len(u.backends)
	switch n {
	case 0:
		return nil
	case 1:
		return u.backends[0]
	}
	i := int(u.next.Add(1) % uint32(n))
	best := u.backends[i]
	low := best.inflight.Load()
	for k := 1; k < n && low > 0; k++ {
		b := u.backends[(i+k)%n]
		if f := b.inflight.Load(); f < low {
			best, low = b, f
		}
	}
	return best
}

// Table maps host names to routes. Lookups take no lock: routes sit in a
// sync.Map, which is built for keys that are written once and read many
// times, and each route's state is an atomically swapped snapshot. Writes
// cost O(1) whatever the number of solutions.
type Table struct {
	routes sync.Map // name -> *route

	mu sync.Mutex // serialises writers
	// backends are shared by address and counted, so that their proxies,
	// pooled connections and counters survive route changes.
	backends map[string]*backend
	refs     map[string]int
	newProx  func(addr string) *httputil.ReverseProxy
}

func newTable(newProxy func(target *url.URL) *httputil.ReverseProxy) *Table {
	t := &Table{backends: map[string]*backend{}, refs: map[string]int{}}
	t.newProx = func(addr string) *httputil.ReverseProxy {
		return newProxy(&url.URL{Scheme: "http", Host: addr})
	}
	return t
}

func (t *Table) lookup(name string) *route {
	if v, ok := t.routes.Load(name); ok {
		return v.(*route)
	}
	return nil
}

// Has is true when a solution of that name has a route, whatever its
// state.
func (t *Table) Has(name string) bool {
	_, ok := t.routes.Load(name)
	return ok
}

// AllowCertificate is a certs.Config.Allow: a solution may have a
// certificate when it has a route.
func (t *Table) AllowCertificate(_ context.Context, name string) error {
	if !t.Has(name) {
		return fmt.Errorf("no solution %q", name)
	}
	return nil
}

// each calls f for every route.
func (t *Table) each(f func(*route)) {
	t.routes.Range(func(_, v any) bool {
		f(v.(*route))
		return true
	})
}

// Len is the number of routes.
func (t *Table) Len() int {
	n := 0
	t.routes.Range(func(_, _ any) bool { n++; return true })
	return n
}

// Set creates or updates a solution's route.
func (t *Table) Set(rs RouteSpec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	snap := &snapshot{title: rs.Title, state: rs.State, reason: rs.Reason, hold: rs.Hold, body: rs.Limits.Body, changed: make(chan struct{}),
		privateRoute: privateRoute{private: rs.Private, owner: rs.Owner, access: rs.Access}}
	for _, u := range rs.Upstreams {
		up := &upstream{component: u.Component}
		for _, a := range u.Addrs {
			up.backends = append(up.backends, t.acquire(a))
		}
		for _, p := range u.Paths {
			snap.prefixes = append(snap.prefixes, prefix{path: p, up: up})
		}
	}
	sort.SliceStable(snap.prefixes, func(i, j int) bool { return len(snap.prefixes[i].path) > len(snap.prefixes[j].path) })
	r := t.lookup(rs.Name)
	if r == nil {
		r = &route{name: rs.Name}
		r.lastActive.Store(time.Now().UnixNano())
		r.setLimits(rs.Limits)
		r.snap.Store(snap)
		t.routes.Store(rs.Name, r)
		return
	}
	r.setLimits(rs.Limits)
	old := r.snap.Swap(snap)
	if snap.state == StateReady && old.state != StateReady {
		// Waking up counts as activity, or a solution woken by one
		// request could be put back to sleep at once.
		r.lastActive.Store(time.Now().UnixNano())
	}
	close(old.changed)
	t.release(old)
}

// Delete removes a solution's route.
func (t *Table) Delete(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.lookup(name)
	if r == nil {
		return
	}
	t.routes.Delete(name)
	// Requests held for it learn that it is gone.
	gone := &snapshot{state: StateFailed, reason: "the solution was removed", changed: make(chan struct{})}
	old := r.snap.Swap(gone)
	close(old.changed)
	t.release(old)
}

// acquire returns the shared backend for addr. Called with mu held.
func (t *Table) acquire(addr string) *backend {
	b, ok := t.backends[addr]
	if !ok {
		b = &backend{addr: addr, proxy: t.newProx(addr), pool: connPool{addr: addr}}
		t.backends[addr] = b
	}
	t.refs[addr]++
	return b
}

// release drops a snapshot's hold on its backends. Called with mu held.
func (t *Table) release(s *snapshot) {
	seen := map[*upstream]bool{}
	for _, p := range s.prefixes {
		if seen[p.up] {
			continue
		}
		seen[p.up] = true
		for _, b := range p.up.backends {
			if t.refs[b.addr]--; t.refs[b.addr] <= 0 {
				delete(t.refs, b.addr)
				delete(t.backends, b.addr)
				b.pool.closeIdle()
			}
		}
	}
}

// Activity returns when a solution last had a request and how many are
// in flight now (open WebSockets and event streams among them).
func (t *Table) Activity(name string) (last time.Time, inflight int64, ok bool) {
	r := t.lookup(name)
	if r == nil {
		return time.Time{}, 0, false
	}
	return time.Unix(0, r.lastActive.Load()), t.Inflight(name), true
}

// Inflight returns the requests being proxied to a solution right now.
func (t *Table) Inflight(name string) int64 {
	if r := t.lookup(name); r != nil {
		return r.inflight.Load()
	}
	return 0
}

// Peak returns the most requests a solution had in flight at once since
// the last call, and starts counting afresh from those in flight now.
func (t *Table) Peak(name string) int64 {
	r := t.lookup(name)
	if r == nil {
		return 0
	}
	return r.peak.Swap(r.inflight.Load())
}

// transport is tuned for many short requests to a few local backends:
// the default keeps only two idle connections per host.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 0
	t.MaxIdleConnsPerHost = 256
	t.ForceAttemptHTTP2 = false
	return t
}
