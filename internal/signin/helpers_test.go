package signin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/aimhub/aim/internal/auth"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/internal/web"
	"github.com/aimhub/aim/test/oidcop"
)

const (
	clientID     = "aim-test"
	clientSecret = "aim-test-secret"
)

// The people of the tests' provider.
var (
	ann   = oidcop.User{Username: "ann", Password: "ann-pw", Email: "ann@example.test", Name: "Ann Admitted", Groups: []string{"staff"}}
	bob   = oidcop.User{Username: "bob", Password: "bob-pw", Email: "bob@example.test", EmailUnverified: true, Name: "Bob"}
	root  = oidcop.User{Username: "root", Password: "root-pw", Email: "root@example.test", Groups: []string{"aim-admins"}, Claims: map[string]any{"aim_provider": "acme"}}
	dev   = oidcop.User{Username: "dev", Password: "dev-pw", Email: "dev@acme.test", Claims: map[string]any{"aim_provider": "acme"}}
	ghost = oidcop.User{Username: "ghost", Password: "ghost-pw", Email: "ghost@example.test", Claims: map[string]any{"aim_provider": "nobody"}}
)

// solutions is a Solutions of fixed answers (the controller's Get is
// tested with the controller).
type solutions map[string]*solution.Info

func (s solutions) Get(_ context.Context, name string) (*solution.Info, error) {
	if in, ok := s[name]; ok {
		return in, nil
	}
	return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
}

func manifest(name string, vis spec.Visibility, access spec.Access) *solution.Info {
	return &solution.Info{Name: name, Title: strings.ToUpper(name[:1]) + name[1:], Manifest: &spec.Manifest{Name: name, Visibility: vis, Access: access}}
}

// env is an apex serving SignIn against a real OpenID provider and a
// real store, and a browser (an http.Client with a cookie jar) to drive
// it.
type env struct {
	t     *testing.T
	op    *oidcop.Server
	st    *store.Store
	si    *SignIn
	guard *StoreGuard
	apex  string // http://localhost:PORT
	port  string
	// browser follows redirects on the apex and the provider, but stops
	// at any other host (a solution's), whose answer is the redirect.
	browser *http.Client
	sols    solutions

	mu      sync.Mutex
	answers []*http.Response // every answer the browser got, in order
}

// newEnv starts the provider and the apex; cfg's Issuer, client, apex
// and guard are filled in.
func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e := &env{t: t, sols: solutions{
		"vault":  manifest("vault", spec.Private, spec.Access{Emails: []string{"ann@example.test"}}),
		"domain": manifest("domain", spec.Private, spec.Access{Domains: []string{"example.test"}}),
		"open":   manifest("open", spec.Public, spec.Access{}),
	}}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	_, e.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	e.apex = "http://localhost:" + e.port

	users := []oidcop.User{ann, bob, root, dev, ghost}
	e.op = oidcop.Start(t, oidcop.Config{Users: users, Clients: []oidcop.Client{{
		ID: clientID, Secret: clientSecret, RedirectURIs: []string{e.apex + "/auth/callback"}, PostLogoutRedirectURIs: []string{e.apex + "/"},
	}}})
	var err error
	if e.st, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "aim.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	if err := e.st.PutProvider(context.Background(), &store.Provider{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	if e.guard, err = NewStoreGuard(e.st, e.apex); err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer == "-" {
		cfg.Issuer = "" // sign-in off
	} else if cfg.Issuer == "" {
		cfg.Issuer = e.op.Issuer
	}
	cfg.ClientID, cfg.ClientSecret, cfg.ApexURL, cfg.Guard = clientID, clientSecret, e.apex, e.guard
	cfg.Logger = testlog.Logger(t, 0)
	if e.si, err = New(cfg, e.st, e.sols, web.NewPages(cfg.Logger)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", e.si)
	// The apex's other pages say whom they see.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(e.si.Identify(r))
	})
	handler = mux
	e.browser = e.newBrowser()
	return e
}

// newBrowser is a fresh browser: no cookies.
func (e *env) newBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	apexAddr := "127.0.0.1:" + e.port
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		// *.localhost is this machine, as browsers have it.
		if host, _, _ := net.SplitHostPort(addr); host == "localhost" || strings.HasSuffix(host, ".localhost") {
			addr = apexAddr
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	return &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		Transport: recorder{tr, e},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Hostname() != "localhost" && req.URL.Hostname() != "127.0.0.1" {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// recorder notes every answer.
type recorder struct {
	rt http.RoundTripper
	e  *env
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err == nil {
		r.e.mu.Lock()
		r.e.answers = append(r.e.answers, resp)
		r.e.mu.Unlock()
	}
	return resp, err
}

// setCookies returns the Set-Cookie lines of the apex's answers so far.
func (e *env) setCookies(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, resp := range e.answers {
		if resp.Request.URL.Hostname() != "localhost" {
			continue
		}
		for _, c := range resp.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, name+"=") {
				out = append(out, c)
			}
		}
	}
	return out
}

// get fetches u with b and returns the final answer and its body.
func (e *env) get(b *http.Client, u string) (*http.Response, string) {
	e.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		e.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, body(e.t, resp)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fillLogin posts the provider's login form on page (the answer resp) as
// u, and returns the browser's answer after the redirects it follows.
func (e *env) fillLogin(b *http.Client, resp *http.Response, page string, u oidcop.User) (*http.Response, string) {
	e.t.Helper()
	action, fields := loginForm(e.t, page)
	fields.Set("username", u.Username)
	fields.Set("password", u.Password)
	to, err := resp.Request.URL.Parse(action)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err = b.PostForm(to.String(), fields)
	if err != nil {
		e.t.Fatalf("posting the login form: %v", err)
	}
	return resp, body(e.t, resp)
}

// signIn signs b in as u from /auth/login with return, and returns the
// page it ends on.
func (e *env) signIn(b *http.Client, u oidcop.User, ret string) (*http.Response, string) {
	e.t.Helper()
	resp, page := e.get(b, e.apex+"/auth/login?"+url.Values{"return": {ret}}.Encode())
	if !strings.HasPrefix(resp.Request.URL.String(), e.op.Issuer) || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("/auth/login led to %s (%s), want the provider's login form:\n%s", resp.Request.URL, resp.Status, page)
	}
	return e.fillLogin(b, resp, page, u)
}

// whoami is the identity the apex sees from b.
func (e *env) whoami(b *http.Client) auth.Identity {
	e.t.Helper()
	resp, page := e.get(b, e.apex+"/whoami")
	var id auth.Identity
	if err := json.Unmarshal([]byte(page), &id); err != nil {
		e.t.Fatalf("the apex answered %s: %v\n%s", resp.Status, err, page)
	}
	return id
}

// sessionSecret is b's platform session cookie.
func (e *env) sessionSecret(b *http.Client) string {
	u, _ := url.Parse(e.apex)
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == SessionCookie {
			return c.Value
		}
	}
	return ""
}

// loginForm reads the provider's login form: its action and fields.
func loginForm(t *testing.T, page string) (string, url.Values) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	action, fields := "", url.Values{}
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "form":
			action = attr(n, "action")
		case "input":
			fields.Set(attr(n, "name"), attr(n, "value"))
		}
	}
	if action == "" {
		t.Fatalf("no login form:\n%s", page)
	}
	return action, fields
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
