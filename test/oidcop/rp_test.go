package oidcop

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// The relying party of these tests is built as aim's will be: go-oidc
// for discovery and ID token checks, x/oauth2 for the code exchange, a
// local redirect handler the browser (here an http.Client) lands on.

const (
	testClientID     = "aim"
	testClientSecret = "aim-test-secret"
)

var alice = User{
	Username: "alice",
	Password: "alice-password",
	Email:    "alice@example.test",
	Name:     "Alice Admin",
	Groups:   []string{"aim-admins", "team-a"},
}

var bob = User{
	Username:        "bob",
	Password:        "bob-password",
	Email:           "bob@example.test",
	EmailUnverified: true,
	Name:            "Bob",
}

// rp is a relying party with its redirect handler.
type rp struct {
	t           testing.TB
	issuer      string
	provider    *oidc.Provider
	oauth       oauth2.Config
	browser     *http.Client // follows redirects, keeps cookies
	redirectURI string
	signedOut   string // a registered post-logout redirect URI

	mu     sync.Mutex
	landed []*url.URL // every request the redirect handler got
}

// newRP starts the handler the provider redirects to. Call connect once
// the provider runs.
func newRP(t testing.TB) *rp {
	r := &rp{t: t}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.landed = append(r.landed, req.URL)
		r.mu.Unlock()
		io.WriteString(w, "relying party: "+req.URL.Path)
	}))
	t.Cleanup(cb.Close)
	r.redirectURI = cb.URL + "/callback"
	r.signedOut = cb.URL + "/signed-out"
	jar, _ := cookiejar.New(nil)
	r.browser = &http.Client{Jar: jar, Timeout: 10 * time.Second}
	return r
}

// client is the provider's configuration of this relying party.
func (r *rp) client() Client {
	return Client{
		ID:                     testClientID,
		Secret:                 testClientSecret,
		RedirectURIs:           []string{r.redirectURI},
		PostLogoutRedirectURIs: []string{r.signedOut},
	}
}

// start runs a provider that knows this relying party, alice and bob.
func (r *rp) start(cfg Config) *Server {
	cfg.Clients = append(cfg.Clients, r.client())
	if cfg.Users == nil {
		cfg.Users = []User{alice, bob}
	}
	s := Start(r.t, cfg)
	r.connect(s.Issuer)
	return s
}

// connect discovers the provider at issuer.
func (r *rp) connect(issuer string) {
	r.t.Helper()
	p, err := oidc.NewProvider(r.ctx(), issuer)
	if err != nil {
		r.t.Fatalf("discovering %s: %v", issuer, err)
	}
	r.issuer, r.provider = issuer, p
	r.oauth = oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  r.redirectURI,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "groups"},
	}
}

func (r *rp) ctx() context.Context {
	return oidc.ClientContext(r.t.Context(), r.browser)
}

// flow is one authorization request's secrets.
type flow struct {
	state, nonce, verifier string
}

func newFlow() flow {
	return flow{state: "state-" + randomID(), nonce: "nonce-" + randomID(), verifier: oauth2.GenerateVerifier()}
}

// authURL is where the relying party sends the browser, with PKCE (S256).
func (r *rp) authURL(f flow, opts ...oauth2.AuthCodeOption) string {
	opts = append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.verifier), oidc.Nonce(f.nonce)}, opts...)
	return r.oauth.AuthCodeURL(f.state, opts...)
}

// signIn opens authURL, fills the login form with username and password
// and follows the redirects; it returns the last response and its body.
func (r *rp) signIn(authURL, username, password string) (*http.Response, string) {
	r.t.Helper()
	resp, body := r.get(authURL)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("GET %s: %s, want the login form:\n%s", authURL, resp.Status, body)
	}
	form := parseLoginForm(r.t, body)
	form.fields.Set("username", username)
	form.fields.Set("password", password)
	action, err := resp.Request.URL.Parse(form.action)
	if err != nil {
		r.t.Fatalf("the login form's action %q: %v", form.action, err)
	}
	resp, err = r.browser.PostForm(action.String(), form.fields)
	if err != nil {
		r.t.Fatalf("posting the login form: %v", err)
	}
	return resp, readBody(r.t, resp)
}

// signInCode signs in and returns the code the redirect handler got,
// having checked that state came back unchanged.
func (r *rp) signInCode(f flow, u User) string {
	r.t.Helper()
	resp, body := r.signIn(r.authURL(f), u.Username, u.Password)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/callback" {
		r.t.Fatalf("signing in as %s ended at %s with %s, want the redirect handler:\n%s", u.Username, resp.Request.URL, resp.Status, body)
	}
	q := resp.Request.URL.Query()
	if got := q.Get("state"); got != f.state {
		r.t.Fatalf("state came back as %q, want %q", got, f.state)
	}
	if q.Get("code") == "" {
		r.t.Fatalf("no code in %s", resp.Request.URL)
	}
	return q.Get("code")
}

// exchange trades a code for tokens, sending the client secret as
// style says (basic auth or the form body).
func (r *rp) exchange(code, verifier string, style oauth2.AuthStyle) (*oauth2.Token, error) {
	conf := r.oauth
	conf.Endpoint.AuthStyle = style
	return conf.Exchange(r.ctx(), code, oauth2.VerifierOption(verifier))
}

func (r *rp) get(u string) (*http.Response, string) {
	r.t.Helper()
	resp, err := r.browser.Get(u)
	if err != nil {
		r.t.Fatalf("GET %s: %v", u, err)
	}
	return resp, readBody(r.t, resp)
}

// landedOn returns the requests the redirect handler got.
func (r *rp) landedOn() []*url.URL {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*url.URL(nil), r.landed...)
}

func readBody(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", resp.Request.URL, err)
	}
	return string(b)
}

// loginForm is the login page's form as a browser sees it.
type loginForm struct {
	action string
	fields url.Values // the inputs' names and values
	labels map[string]string
	submit bool // has a submit button
}

// parseLoginForm reads the page's one form; it fails t unless the form
// posts, labels its username and password inputs and has a submit
// button, as a person (and playwright's getByLabel) needs.
func parseLoginForm(t testing.TB, page string) loginForm {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parsing the login page: %v", err)
	}
	f := loginForm{fields: url.Values{}, labels: map[string]string{}}
	ids := map[string]string{} // input id -> name
	forms := 0
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		switch n.Data {
		case "form":
			forms++
			if attr(n, "method") != "post" {
				t.Errorf("the login form's method is %q, want post", attr(n, "method"))
			}
			f.action = attr(n, "action")
		case "input":
			f.fields.Set(attr(n, "name"), attr(n, "value"))
			if id := attr(n, "id"); id != "" {
				ids[id] = attr(n, "name")
			}
		case "label":
			f.labels[attr(n, "for")] = text(n)
		case "button":
			f.submit = f.submit || attr(n, "type") == "submit"
		}
	}
	if forms != 1 {
		t.Fatalf("the login page has %d forms, want 1:\n%s", forms, page)
	}
	for _, name := range []string{"username", "password"} {
		labelled := false
		for id, label := range f.labels {
			labelled = labelled || (ids[id] == name && label != "")
		}
		if !labelled {
			t.Errorf("the login form has no labelled %s input:\n%s", name, page)
		}
	}
	if !f.submit {
		t.Errorf("the login form has no submit button:\n%s", page)
	}
	return f
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return strings.TrimSpace(b.String())
}

// oauthErrorCode returns the OAuth error code of a failed exchange.
func oauthErrorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}
