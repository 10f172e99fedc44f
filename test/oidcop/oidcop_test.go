package oidcop

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// idClaims are the claims aim reads from an ID token.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

func TestCodeFlow(t *testing.T) {
	r := newRP(t)
	r.start(Config{})
	tests := []struct {
		name  string
		style oauth2.AuthStyle
		user  User
	}{
		{name: "client_secret_basic", style: oauth2.AuthStyleInHeader, user: alice},
		{name: "client_secret_post", style: oauth2.AuthStyleInParams, user: alice},
		{name: "unverified email and no groups", style: oauth2.AuthStyleInHeader, user: bob},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow()
			code := r.signInCode(f, tt.user)
			tok, err := r.exchange(code, f.verifier, tt.style)
			if err != nil {
				t.Fatalf("exchanging the code: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := r.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(t.Context(), raw)
			if err != nil {
				t.Fatalf("verifying the ID token: %v", err)
			}
			if idt.Nonce != f.nonce {
				t.Errorf("nonce %q, want %q", idt.Nonce, f.nonce)
			}
			if idt.Subject != tt.user.Username || idt.Issuer != r.issuer {
				t.Errorf("sub %q iss %q, want %q %q", idt.Subject, idt.Issuer, tt.user.Username, r.issuer)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var c idClaims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			checkClaims(t, "ID token", c, tt.user)

			info, err := r.provider.UserInfo(r.ctx(), oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			if info.Subject != tt.user.Username || info.Email != tt.user.Email || info.EmailVerified == tt.user.EmailUnverified {
				t.Errorf("userinfo sub %q email %q verified %v, want %q %q %v",
					info.Subject, info.Email, info.EmailVerified, tt.user.Username, tt.user.Email, !tt.user.EmailUnverified)
			}
			var ic idClaims
			if err := info.Claims(&ic); err != nil {
				t.Fatal(err)
			}
			checkClaims(t, "userinfo", ic, tt.user)
		})
	}
}

func checkClaims(t *testing.T, where string, c idClaims, u User) {
	t.Helper()
	if c.Email != u.Email || c.Name != u.Name {
		t.Errorf("%s: email %q name %q, want %q %q", where, c.Email, c.Name, u.Email, u.Name)
	}
	if c.EmailVerified == nil || *c.EmailVerified != !u.EmailUnverified {
		t.Errorf("%s: email_verified %v, want %v", where, c.EmailVerified, !u.EmailUnverified)
	}
	want := u.Groups
	if want == nil {
		want = []string{}
	}
	if c.Groups == nil || !slices.Equal(c.Groups, want) {
		t.Errorf("%s: groups %q, want %q", where, c.Groups, want)
	}
}

func TestDiscovery(t *testing.T) {
	r := newRP(t)
	s := r.start(Config{})
	var d struct {
		Issuer              string   `json:"issuer"`
		EndSession          string   `json:"end_session_endpoint"`
		JWKS                string   `json:"jwks_uri"`
		Userinfo            string   `json:"userinfo_endpoint"`
		CodeChallenge       []string `json:"code_challenge_methods_supported"`
		TokenAuthMethods    []string `json:"token_endpoint_auth_methods_supported"`
		Claims              []string `json:"claims_supported"`
		Scopes              []string `json:"scopes_supported"`
		SigningAlgs         []string `json:"id_token_signing_alg_values_supported"`
		ResponseTypes       []string `json:"response_types_supported"`
		AuthorizationDomain string   `json:"authorization_endpoint"`
	}
	getJSON(t, r, s.Issuer+"/.well-known/openid-configuration", &d)
	if d.Issuer != s.Issuer {
		t.Errorf("issuer %q, want %q", d.Issuer, s.Issuer)
	}
	for _, e := range []string{d.EndSession, d.JWKS, d.Userinfo, d.AuthorizationDomain} {
		if !strings.HasPrefix(e, s.Issuer+"/") {
			t.Errorf("endpoint %q is not under the issuer %s", e, s.Issuer)
		}
	}
	for _, c := range []struct {
		name string
		list []string
		want []string
	}{
		{"code_challenge_methods_supported", d.CodeChallenge, []string{"S256"}},
		{"token_endpoint_auth_methods_supported", d.TokenAuthMethods, []string{"client_secret_basic", "client_secret_post"}},
		{"claims_supported", d.Claims, []string{"email", "email_verified", "name", "groups"}},
		{"scopes_supported", d.Scopes, []string{"openid", "email", "profile", "groups"}},
		{"id_token_signing_alg_values_supported", d.SigningAlgs, []string{"RS256"}},
	} {
		for _, w := range c.want {
			if !slices.Contains(c.list, w) {
				t.Errorf("%s %q lacks %q", c.name, c.list, w)
			}
		}
	}
	var jwks struct {
		Keys []struct{ Kid, Kty, Alg, Use string }
	}
	getJSON(t, r, d.JWKS, &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0].Kty != "RSA" || jwks.Keys[0].Alg != "RS256" || jwks.Keys[0].Use != "sig" || jwks.Keys[0].Kid == "" {
		t.Errorf("JWKS %+v, want one RSA RS256 signing key with a kid", jwks.Keys)
	}
}

func getJSON(t *testing.T, r *rp, u string, v any) {
	t.Helper()
	resp, body := r.get(u)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", u, resp.Status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
}

func TestLoginRefused(t *testing.T) {
	r := newRP(t)
	r.start(Config{})
	tests := []struct {
		name, username, password string
	}{
		{"wrong password", "alice", "bob-password"},
		{"unknown user", "mallory", "alice-password"},
		{"empty password", "alice", ""},
		{"password of another case", "alice", "ALICE-PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.landedOn())
			resp, body := r.signIn(r.authURL(newFlow()), tt.username, tt.password)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %s, want 401", resp.Status)
			}
			if !strings.Contains(body, "Wrong username or password.") {
				t.Errorf("the page does not say the password was refused:\n%s", body)
			}
			parseLoginForm(t, body) // the form again, to try once more
			if n := len(r.landedOn()); n != before {
				t.Errorf("the relying party was reached (%v) after a refused login", r.landedOn()[before:])
			}
		})
	}

	t.Run("a second try with the right password signs in", func(t *testing.T) {
		f := newFlow()
		resp, body := r.signIn(r.authURL(f), "alice", "wrong")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %s, want 401", resp.Status)
		}
		form := parseLoginForm(t, body)
		form.fields.Set("password", alice.Password)
		action, _ := resp.Request.URL.Parse(form.action)
		resp, err := r.browser.PostForm(action.String(), form.fields)
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
		if resp.Request.URL.Path != "/callback" || resp.Request.URL.Query().Get("state") != f.state {
			t.Errorf("ended at %s, want the callback with the state", resp.Request.URL)
		}
	})
}

func TestAuthorizeRefused(t *testing.T) {
	r := newRP(t)
	r.start(Config{})
	f := newFlow()
	withChallenge := func(method string) string {
		u := r.oauth.AuthCodeURL(f.state, oidc.Nonce(f.nonce),
			oauth2.SetAuthURLParam("code_challenge", oauth2.S256ChallengeFromVerifier(f.verifier)),
			oauth2.SetAuthURLParam("code_challenge_method", method))
		return u
	}
	tests := []struct {
		name    string
		url     string
		status  int    // of the authorization endpoint's answer, when it shows the error
		landErr string // the error the relying party gets, when the provider redirects it
	}{
		{
			name:   "unknown redirect URI",
			url:    strings.Replace(r.authURL(f), url.QueryEscape(r.redirectURI), url.QueryEscape(r.redirectURI+"-evil"), 1),
			status: http.StatusBadRequest,
		},
		{
			name:   "unknown client",
			url:    strings.Replace(r.authURL(f), "client_id="+testClientID, "client_id=stranger", 1),
			status: http.StatusBadRequest,
		},
		{name: "no PKCE", url: r.oauth.AuthCodeURL(f.state, oidc.Nonce(f.nonce)), landErr: "invalid_request"},
		{name: "plain PKCE", url: withChallenge("plain"), landErr: "invalid_request"},
		{name: "unknown PKCE method", url: withChallenge("S512"), landErr: "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(r.landedOn())
			resp, body := r.get(tt.url)
			landed := r.landedOn()[before:]
			if tt.status != 0 {
				if resp.StatusCode != tt.status {
					t.Errorf("status %s, want %d:\n%s", resp.Status, tt.status, body)
				}
				if len(landed) != 0 {
					t.Errorf("the browser was sent on to %v", landed)
				}
				return
			}
			if len(landed) != 1 || landed[0].Path != "/callback" {
				t.Fatalf("the browser landed on %v, want the callback once (%s: %s)", landed, resp.Status, body)
			}
			q := landed[0].Query()
			if q.Get("error") != tt.landErr || q.Get("state") != f.state || q.Get("code") != "" {
				t.Errorf("the callback got %v, want error %s with the state and no code", q, tt.landErr)
			}
		})
	}
}

func TestExchangeRefused(t *testing.T) {
	r := newRP(t)
	r.start(Config{})
	tests := []struct {
		name     string
		exchange func(code string, f flow) error
		want     string // OAuth error code
	}{
		{
			name: "wrong PKCE verifier",
			exchange: func(code string, _ flow) error {
				_, err := r.exchange(code, oauth2.GenerateVerifier(), oauth2.AuthStyleInHeader)
				return err
			},
			want: "invalid_grant",
		},
		{
			name: "no PKCE verifier",
			exchange: func(code string, _ flow) error {
				_, err := r.oauth.Exchange(r.ctx(), code)
				return err
			},
			want: "invalid_request",
		},
		{
			name: "wrong client secret",
			exchange: func(code string, f flow) error {
				conf := r.oauth
				conf.ClientSecret = "guess"
				conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
				_, err := conf.Exchange(r.ctx(), code, oauth2.VerifierOption(f.verifier))
				return err
			},
			want: "invalid_client",
		},
		{
			name: "code used twice",
			exchange: func(code string, f flow) error {
				if _, err := r.exchange(code, f.verifier, oauth2.AuthStyleInHeader); err != nil {
					t.Fatalf("the first exchange: %v", err)
				}
				_, err := r.exchange(code, f.verifier, oauth2.AuthStyleInHeader)
				return err
			},
			want: "invalid_grant",
		},
		{
			name: "made-up code",
			exchange: func(_ string, f flow) error {
				_, err := r.exchange("made-up", f.verifier, oauth2.AuthStyleInHeader)
				return err
			},
			want: "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow()
			err := tt.exchange(r.signInCode(f, alice), f)
			if got := oauthErrorCode(err); got != tt.want {
				t.Errorf("exchange: %v (code %q), want %s", err, got, tt.want)
			}
		})
	}
}

func TestEndSession(t *testing.T) {
	r := newRP(t)
	s := r.start(Config{})
	var d struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.provider.Claims(&d); err != nil || d.EndSession == "" {
		t.Fatalf("no end_session_endpoint in discovery: %v", err)
	}
	endSession := d.EndSession
	signedIn := func(t *testing.T) (*oauth2.Token, string) {
		f := newFlow()
		tok, err := r.exchange(r.signInCode(f, alice), f.verifier, oauth2.AuthStyleInHeader)
		if err != nil {
			t.Fatal(err)
		}
		return tok, tok.Extra("id_token").(string)
	}

	t.Run("to the post-logout redirect URI, with state", func(t *testing.T) {
		tok, idToken := signedIn(t)
		q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {r.signedOut}, "state": {"bye"}}
		resp, body := r.get(endSession + "?" + q.Encode())
		if resp.Request.URL.Path != "/signed-out" || resp.Request.URL.Query().Get("state") != "bye" {
			t.Fatalf("logout ended at %s (%s), want %s?state=bye:\n%s", resp.Request.URL, resp.Status, r.signedOut, body)
		}
		// The session's access tokens end with it.
		if _, err := r.provider.UserInfo(r.ctx(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Errorf("userinfo still answers the signed-out user's access token")
		}
	})

	t.Run("an unregistered post-logout redirect URI is refused", func(t *testing.T) {
		_, idToken := signedIn(t)
		before := len(r.landedOn())
		q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {r.signedOut + "-evil"}}
		resp, body := r.get(endSession + "?" + q.Encode())
		if resp.StatusCode != http.StatusBadRequest || len(r.landedOn()) != before {
			t.Errorf("status %s, landed on %v; want 400 and no redirect:\n%s", resp.Status, r.landedOn()[before:], body)
		}
	})

	t.Run("without a redirect URI, the provider's signed-out page", func(t *testing.T) {
		resp, body := r.get(endSession)
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != s.Issuer+loggedOutPath || !strings.Contains(body, "You are signed out.") {
			t.Errorf("logout ended at %s (%s), want %s:\n%s", resp.Request.URL, resp.Status, s.Issuer+loggedOutPath, body)
		}
	})
}

func TestSetUser(t *testing.T) {
	r := newRP(t)
	s := r.start(Config{Users: []User{}, GroupsClaim: "roles"})
	claimsOf := func(u User) map[string]any {
		f := newFlow()
		tok, err := r.exchange(r.signInCode(f, u), f.verifier, oauth2.AuthStyleInHeader)
		if err != nil {
			t.Fatal(err)
		}
		idt, err := r.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(t.Context(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		_ = idt.Claims(&c)
		return c
	}

	carol := User{Username: "carol", Password: "carol-password", Email: "carol@example.test", Groups: []string{"viewers"}}
	if err := s.SetUser(carol); err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(carol); !slices.Equal(anyStrings(c["roles"]), []string{"viewers"}) || c["groups"] != nil {
		t.Errorf("claims %v, want roles [viewers] and no groups claim", c)
	}
	carol.Groups = []string{"viewers", "aim-admins"}
	if err := s.SetUser(carol); err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(carol); !slices.Equal(anyStrings(c["roles"]), carol.Groups) {
		t.Errorf("after SetUser, roles %v, want %v", c["roles"], carol.Groups)
	}
	carol.Claims = map[string]any{"aim_provider": "acme"}
	if err := s.SetUser(carol); err != nil {
		t.Fatal(err)
	}
	if c := claimsOf(carol); c["aim_provider"] != "acme" {
		t.Errorf("claims %v, want aim_provider acme", c)
	}
	if err := s.SetUser(User{Username: "dave"}); err == nil {
		t.Errorf("SetUser took a user without a password")
	}
	if err := s.SetUser(User{Username: "dave", Password: "p", Claims: map[string]any{"email_verified": true}}); err == nil {
		t.Errorf("SetUser took a claim that redefines email_verified")
	}
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestIssuerPath runs the provider under a path, as behind a proxy that
// serves it at /oidc.
func TestIssuerPath(t *testing.T) {
	r := newRP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String() + "/oidc"
	cfg, err := Config{Issuer: issuer, Clients: []Client{r.client()}, Users: []User{alice}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := newHandler(cfg, issuer)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	r.connect(issuer)
	f := newFlow()
	tok, err := r.exchange(r.signInCode(f, alice), f.verifier, oauth2.AuthStyleInHeader)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := r.provider.Verifier(&oidc.Config{ClientID: testClientID}).Verify(t.Context(), tok.Extra("id_token").(string)); err != nil {
		t.Errorf("verifying the ID token: %v", err)
	}
	if resp, _ := r.get(strings.TrimSuffix(issuer, "/oidc") + "/.well-known/openid-configuration"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("discovery outside the issuer's path: %s, want 404", resp.Status)
	}
}

func TestTokenLifetime(t *testing.T) {
	t.Parallel() // it sleeps
	r := newRP(t)
	r.start(Config{TokenLifetime: time.Second})
	f := newFlow()
	tok, err := r.exchange(r.signInCode(f, alice), f.verifier, oauth2.AuthStyleInHeader)
	if err != nil {
		t.Fatal(err)
	}
	verifier := r.provider.Verifier(&oidc.Config{ClientID: testClientID})
	raw := tok.Extra("id_token").(string)
	if _, err := verifier.Verify(t.Context(), raw); err != nil {
		t.Fatalf("a fresh ID token: %v", err)
	}
	time.Sleep(2100 * time.Millisecond) // exp is in whole seconds
	var expired *oidc.TokenExpiredError
	if _, err := verifier.Verify(t.Context(), raw); !errors.As(err, &expired) {
		t.Errorf("an ID token past its lifetime: %v, want it expired", err)
	}
	if _, err := r.provider.UserInfo(r.ctx(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Errorf("userinfo answers an access token past its lifetime")
	}
}
