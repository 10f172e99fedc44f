// Package gateway is aim's edge: it routes <solution>.<domain> to the
// solution's public components, and everything else to aim's own pages
// and API. It knows nothing of Docker or Kubernetes: the controller tells
// it, through Table, which addresses serve which solution.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/metrics"
)

// Waker wakes a sleeping solution. Wake returns once the solution can take
// requests, or with the reason it can't.
type Waker interface {
	Wake(ctx context.Context, name string) error
}

// Config configures a Gateway.
type Config struct {
	// Domain is the apex; solutions are served at <name>.<Domain>.
	// Empty means "localhost".
	Domain string
	// Apex serves every request that is not for a solution: aim's API and
	// pages. Nil answers 404.
	Apex http.Handler
	// Waker wakes sleeping solutions. Nil means a sleeping solution
	// answers 503.
	Waker Waker
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Transport to the solutions; nil means a tuned clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// HoldTimeout is how long a request waits for a starting solution.
	// Zero means 2m.
	HoldTimeout time.Duration
	// MaxPending bounds the requests held per solution; more get 503.
	// Zero means 1000.
	MaxPending int64
	// BotAgents are case-insensitive substrings of User-Agent headers
	// whose requests neither wake a solution nor count as activity, as
	// HEAD requests and /robots.txt don't. Nil means DefaultBotAgents.
	BotAgents []string
	// Metrics; nil records nothing.
	Metrics *metrics.Metrics
	// AccessLog, when set, gets a line per request to a solution.
	AccessLog *slog.Logger
	// TrustedProxies are the peers whose X-Forwarded-For names the
	// client, for rate limits and access logs.
	TrustedProxies Proxies
	// Usage, when set, is told of every request to a solution that is
	// not a bot's (internal/usage counts them for providers).
	Usage Usage
	// Guard checks who may reach a private solution. Nil refuses every
	// request for one (403): without sign-in, no one is admitted.
	Guard Guard
}

// Usage is told of the requests people and programs make to solutions.
type Usage interface {
	// Request is one request from client; page is a browser asking for
	// a page (GET, Accept text/html), else it is an API call.
	Request(solution string, client netip.Addr, page bool, status int, at time.Time)
}

// DefaultBotAgents match health checkers, monitors and crawlers.
var DefaultBotAgents = []string{"bot", "crawl", "spider", "slurp", "kube-probe", "health", "uptime", "pingdom", "statuscake", "prometheus", "blackbox", "monitor"}

// Gateway is an http.Handler.
type Gateway struct {
	cfg    Config
	domain string // lower case
	suffix string // "." + domain
	Routes *Table
	log    *slog.Logger
	// heldRetryPause is forwardHeld's pause; tests shorten it.
	heldRetryPause time.Duration
}

// New builds a gateway.
func New(cfg Config) *Gateway {
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Transport == nil {
		cfg.Transport = newTransport()
	}
	if cfg.Apex == nil {
		cfg.Apex = http.NotFoundHandler()
	}
	if cfg.HoldTimeout == 0 {
		cfg.HoldTimeout = 2 * time.Minute
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = 1000
	}
	if cfg.BotAgents == nil {
		cfg.BotAgents = DefaultBotAgents
	}
	// A copy: the caller's slice (DefaultBotAgents, shared by every
	// gateway) is not the gateway's to change (go test -race caught it).
	agents := make([]string, len(cfg.BotAgents))
	for i, a := range cfg.BotAgents {
		agents[i] = strings.ToLower(a)
	}
	cfg.BotAgents = agents
	g := &Gateway{cfg: cfg, domain: strings.ToLower(cfg.Domain), suffix: "." + strings.ToLower(cfg.Domain), log: cfg.Logger, heldRetryPause: heldRetryPause}
	g.Routes = newTable(g.newProxy)
	return g
}

// SetWaker sets the waker; call it before serving.
func (g *Gateway) SetWaker(w Waker) { g.cfg.Waker = w }

// SetGuard sets the guard of private solutions; call it before serving.
func (g *Gateway) SetGuard(gd Guard) { g.cfg.Guard = gd }

// SetApex sets the handler of the apex host; call it before serving.
func (g *Gateway) SetApex(h http.Handler) { g.cfg.Apex = h }

// Domain returns the apex domain.
func (g *Gateway) Domain() string { return g.cfg.Domain }

// hostName is a Host header's name, lower case, without its port and a
// final dot. The port goes as net.SplitHostPort would take it, without
// the error it allocates for the usual Host without a port.
func hostName(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	return strings.TrimSuffix(lower(host), ".")
}

// solutionName returns the solution a Host header names, or "".
func (g *Gateway) solutionName(host string) string {
	name, ok := strings.CutSuffix(hostName(host), g.suffix)
	if !ok || name == "" || strings.Contains(name, ".") {
		return ""
	}
	return name
}

// apexHost reports whether a Host that names no solution is the apex's:
// the domain itself, or an IP address (the CLI on this machine uses
// 127.0.0.1; a cluster's probes and Prometheus use the pod's IP). A
// browser never sends an IP for a name, so DNS rebinding cannot reach
// the apex through that door.
func (g *Gateway) apexHost(host string) bool {
	host = hostName(host)
	if host == g.domain {
		return true
	}
	_, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := g.solutionName(r.Host)
	if name == "" {
		if !g.apexHost(r.Host) {
			// Not the platform's name nor a solution's: a name pointed at
			// this server by someone else (DNS rebinding) or a deeper
			// subdomain. Neither gets the API or the catalog.
			g.errorPage(w, r, http.StatusMisdirectedRequest, "Not served here",
				"This server answers for "+g.cfg.Domain+" and its solutions only.", 0)
			return
		}
		g.cfg.Apex.ServeHTTP(w, r)
		return
	}
	rt := g.Routes.lookup(name)
	if rt == nil {
		g.errorPage(w, r, http.StatusNotFound, "No such solution", "There is no solution called "+name+" here.", 0)
		return
	}
	start := time.Now()
	rw := getWriter(w)
	defer putWriter(rw)
	var client netip.Addr
	if g.cfg.AccessLog != nil || g.cfg.Usage != nil || rt.lim.Load() != nil {
		client = g.cfg.TrustedProxies.clientIP(r)
	}
	bot := g.isBot(r)
	var wake time.Duration
	defer func() {
		end := time.Now()
		rt.stats.observe(rw.status, end.Sub(start), rw.in, rw.out)
		if g.cfg.Usage != nil && !bot {
			g.cfg.Usage.Request(rt.name, client, wantsHTML(r), rw.status, end)
		}
		if g.cfg.AccessLog != nil {
			g.logAccess(&accessEntry{
				solution: rt.name, client: client, method: r.Method, host: []byte(r.Host), uri: []byte(r.RequestURI),
				proto: r.Proto, status: rw.status, in: rw.in, out: rw.out, start: start, wake: wake,
				userAgent: []byte(r.UserAgent()), referer: []byte(r.Referer()),
			}, end)
		}
	}()
	if lim := rt.lim.Load(); lim != nil {
		if ok, wait := lim.allow(client, start); !ok {
			rt.stats.refuse(refusedRate)
			g.errorPage(rw, r, http.StatusTooManyRequests, "Too many requests",
				fmt.Sprintf("This client sent more than %g requests a second to %s; wait and retry.", lim.rps, rt.name), retryAfter(wait))
			return
		}
	}
	if body := rt.snap.Load().body; body > 0 {
		if r.ContentLength > body {
			rt.stats.refuse(refusedBody)
			g.bodyTooLarge(rw, r, body)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// The server's own writer, so that it closes the connection
			// after answering a client that sent too much.
			r.Body = http.MaxBytesReader(w, r.Body, body)
		}
	}
	if !g.admit(rw, r, rt, rt.snap.Load()) {
		return
	}
	stripCredentials(r.Header)
	if r.Body != nil && r.Body != http.NoBody {
		rw.body = r.Body
		r.Body = rw.bodyReader()
	}
	b, waited := g.backendFor(rw, r, rt, bot)
	if b == nil {
		return
	}
	if waited > 0 {
		wake = waited
		// Tell the client this was a cold start and what it cost.
		rw.Header().Set("Server-Timing", fmt.Sprintf("wake;dur=%.1f", float64(waited.Microseconds())/1000))
	}
	if !bot {
		rt.active(start.UnixNano())
		// The end of a long request (a WebSocket, an event stream) is
		// activity too: the idle time starts when it closes.
		defer func() { rt.active(time.Now().UnixNano()) }()
	}
	if isStream(r) {
		// WebSockets and event streams live as long as their users want;
		// the server's timeouts are for requests and answers. (A hijacked
		// connection keeps the deadlines the server set.)
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Time{})
	}
	rt.enter()
	defer rt.leave()
	if waited > 0 && rw.body == nil && retriable(r) {
		g.forwardHeld(rw, r, rt, b, bot)
		return
	}
	g.forward(rw, r, b)
}

// forward proxies r to the replica b.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, b *backend) {
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	if !pooled(r) {
		b.proxy.ServeHTTP(w, r)
		return
	}
	if err := g.roundTrip(w, r, b); err != nil {
		g.proxyError(w, r, err)
	}
}

// isStream is true for requests that open a long-lived connection: a
// protocol upgrade (WebSocket) or an event stream.
func isStream(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func (g *Gateway) bodyTooLarge(w http.ResponseWriter, r *http.Request, limit int64) {
	g.errorPage(w, r, http.StatusRequestEntityTooLarge, "Request body too large",
		fmt.Sprintf("This solution accepts bodies of at most %d bytes (%s).", limit, humanBytes(limit)), 0)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// backendFor finds a ready replica for r, holding the request while the
// solution starts or wakes. It answers the request itself and returns nil
// when there is none to be had.
func (g *Gateway) backendFor(w http.ResponseWriter, r *http.Request, rt *route, bot bool) (*backend, time.Duration) {
	snap := rt.snap.Load()
	var timeout <-chan time.Time
	var since time.Time
	held := false
	defer func() {
		if held {
			rt.pending.Add(-1)
		}
	}()
	for {
		up := snap.pick(r.URL.Path)
		if up == nil {
			g.errorPage(w, r, http.StatusNotFound, "Not found", snap.title+" serves nothing at "+r.URL.Path+".", 0)
			return nil, 0
		}
		if b := up.backend(); b != nil {
			if held {
				return b, time.Since(since)
			}
			return b, 0
		}
		if snap.state == StateFailed {
			g.errorPage(w, r, http.StatusBadGateway, snap.title+" is not running", snap.reason, 0)
			return nil, 0
		}
		if snap.state == StateSleeping && g.cfg.Waker == nil {
			g.errorPage(w, r, http.StatusServiceUnavailable, snap.title+" is asleep", "Nothing here can wake it.", 0)
			return nil, 0
		}
		if snap.state == StateSleeping && bot {
			g.errorPage(w, r, http.StatusServiceUnavailable, snap.title+" is asleep", "Requests from checkers and crawlers do not wake it.", 60)
			return nil, 0
		}
		if wantsHTML(r) && !snap.hold && !held {
			// A person in a browser sees that something happens; the page
			// reloads itself and gets the solution once it is up.
			if snap.state == StateSleeping && g.cfg.Waker != nil {
				go func() { _ = g.cfg.Waker.Wake(context.WithoutCancel(r.Context()), rt.name) }()
			}
			g.startingPage(w, snap)
			return nil, 0
		}
		if !held {
			if rt.pending.Add(1) > g.cfg.MaxPending {
				rt.pending.Add(-1)
				rt.stats.refuse(refusedQueueFull)
				g.errorPage(w, r, http.StatusServiceUnavailable, snap.title+" is busy starting", "Too many requests are waiting for it; try again shortly.", 2)
				return nil, 0
			}
			held = true
			since = time.Now()
			g.cfg.Metrics.HeldRequest(rt.name)
			t := time.NewTimer(g.cfg.HoldTimeout)
			defer t.Stop()
			timeout = t.C
		}
		if snap.state == StateSleeping && g.cfg.Waker != nil {
			if err := g.cfg.Waker.Wake(r.Context(), rt.name); err != nil {
				if r.Context().Err() == nil {
					rt.stats.refuse(refusedWakeFailed)
					g.wakeError(w, r, snap.title, err)
				}
				return nil, 0
			}
			if next := rt.snap.Load(); next != snap {
				snap = next
				continue
			}
		}
		select {
		case <-snap.changed:
			snap = rt.snap.Load()
		case <-r.Context().Done():
			return nil, 0
		case <-timeout:
			rt.stats.refuse(refusedHoldTimeout)
			g.errorPage(w, r, http.StatusGatewayTimeout, snap.title+" did not start in time", snap.reason, 0)
			return nil, 0
		}
	}
}

// isBot is true for requests that should not keep a solution awake:
// HEAD, /robots.txt, and the User-Agents of checkers and crawlers.
func (g *Gateway) isBot(r *http.Request) bool {
	return isBot(r.Method == http.MethodHead, r.URL.Path, r.Header.Get("User-Agent"), g.cfg.BotAgents)
}

// isBot is Gateway.isBot for the fast path's raw head as well.
func isBot[S string | []byte](head bool, path, ua S, agents []string) bool {
	if head || string(path) == "/robots.txt" {
		return true
	}
	for _, a := range agents {
		if containsFold(ua, a) {
			return true
		}
	}
	return false
}

// lower is strings.ToLower without the allocation when s is lower case
// already, as host names nearly always are.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' || c >= 0x80 {
			return strings.ToLower(s)
		}
	}
	return s
}

// containsFold reports whether s contains the lower-case ASCII substr,
// ignoring case, without allocating.
func containsFold[S string | []byte](s S, substr string) bool {
	n := len(substr)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != substr[j] {
				break
			}
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func (g *Gateway) wakeError(w http.ResponseWriter, r *http.Request, title string, err error) {
	var se interface{ HTTPStatus() int }
	status := http.StatusServiceUnavailable
	if errors.As(err, &se) {
		status = se.HTTPStatus()
	}
	retry := 0
	if status == http.StatusServiceUnavailable {
		retry = 2
	}
	g.errorPage(w, r, status, title+" did not start", err.Error(), retry)
}

func (g *Gateway) newProxy(target *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // solutions see the public name
			if g.cfg.TrustedProxies.trustsPeer(pr.In) {
				pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			}
			pr.SetXForwarded()
		},
		Transport: g.cfg.Transport,
		// Flush at once so that server-sent events and streamed answers
		// reach the client as they are written.
		FlushInterval: -1,
		BufferPool:    bufferPool{},
		ErrorHandler:  g.proxyError,
		ModifyResponse: func(resp *http.Response) error {
			safeSetCookies(resp.Header)
			return nil
		},
	}
}

// proxyError maps a failed round trip to a status: 413 past the body
// limit, 400 for a body net/http could not read, 499 when the client left
// (nothing to answer), 504 on a timeout, 502 otherwise (the solution
// refused or dropped the connection: it crashed or is restarting).
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rw, _ := w.(*writer)
	switch {
	case rw != nil && rw.tooBig > 0:
		if rt := g.Routes.lookup(g.solutionName(r.Host)); rt != nil {
			rt.stats.refuse(refusedBody)
		}
		g.bodyTooLarge(w, r, rw.tooBig)
	case rw != nil && rw.badBody != nil:
		// The client's framing, not the solution, failed: where its next
		// request would start is unknown, so the connection ends here.
		w.Header().Set("Connection", "close")
		g.errorPage(w, r, http.StatusBadRequest, "Malformed request body", "The request's body could not be read: "+rw.badBody.Error()+".", 0)
	case errors.Is(err, errClientGone), errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		w.WriteHeader(499)
		return
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		g.errorPage(w, r, http.StatusGatewayTimeout, "The solution did not answer in time", "", 0)
	default:
		g.log.Warn("proxy error", "host", r.Host, "path", r.URL.Path, "err", err)
		g.notAnswering(w, r)
	}
}

// notAnswering is the 502 for a replica that refused or dropped the
// connection.
func (g *Gateway) notAnswering(w http.ResponseWriter, r *http.Request) {
	g.errorPage(w, r, http.StatusBadGateway, "The solution is not answering", "It may have crashed or be restarting.", 2)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ReadyTimeout bounds one readiness probe; exported for the controller's
// probes so both judge readiness the same way.
const ReadyTimeout = 2 * time.Second
