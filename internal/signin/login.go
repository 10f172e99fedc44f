package signin

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aimhub/aim/internal/gateway"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/web"
)

// flow is a sign-in under way, as the login cookie carries it.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"r"`
	Expires  int64  `json:"e"` // Unix seconds
}

// login sends the browser to the provider's login form, remembering the
// flow's secrets in the login cookie.
func (s *SignIn) login(w http.ResponseWriter, r *http.Request) {
	if !s.Enabled() {
		s.notConfigured(w, r)
		return
	}
	p, err := s.discover(r.Context())
	if err != nil {
		s.providerDown(w, r, err)
		return
	}
	key, err := s.signingKey(r.Context())
	if err != nil {
		s.internal(w, r, "reading the sign-in key", err)
		return
	}
	f := flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Return: apexReturn(r.URL.Query().Get("return")),
		Expires: time.Now().Add(loginLifetime).Unix()}
	http.SetCookie(w, hostCookie(loginCookie, sealFlow(key, f), loginLifetime))
	http.Redirect(w, r, p.oauth.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)), http.StatusFound)
}

// callback finishes a sign-in: the provider sent the browser back with a
// code (or an error).
func (s *SignIn) callback(w http.ResponseWriter, r *http.Request) {
	if !s.Enabled() {
		s.notConfigured(w, r)
		return
	}
	ctx := r.Context()
	key, err := s.signingKey(ctx)
	if err != nil {
		s.internal(w, r, "reading the sign-in key", err)
		return
	}
	// The cookie is for one attempt, whatever comes of it.
	http.SetCookie(w, hostCookie(loginCookie, "", -1))
	f, ok := readFlow(r, key)
	q := r.URL.Query()
	switch {
	case !ok:
		s.retry(w, r, "Sign-in expired", "This sign-in took longer than "+loginLifetime.String()+", was started again in another tab, or did not start here.", "/")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1:
		s.log.Warn("sign-in refused: the state does not match")
		s.retry(w, r, "Sign-in did not match", "The answer from the sign-in provider is not for the sign-in this browser started.", f.Return)
		return
	case q.Get("error") != "":
		s.log.Info("the provider refused a sign-in", "error", q.Get("error"), "description", q.Get("error_description"))
		s.retry(w, r, "Sign-in refused", "The sign-in provider said: "+strings.TrimSpace(q.Get("error")+" "+q.Get("error_description"))+".", f.Return)
		return
	}
	p, err := s.discover(ctx)
	if err != nil {
		s.providerDown(w, r, err)
		return
	}
	pctx := oidc.ClientContext(ctx, s.cfg.HTTPClient)
	tok, err := p.oauth.Exchange(pctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.log.Warn("sign-in refused: the code exchange failed", "err", err)
		s.retry(w, r, "Sign-in failed", "The sign-in provider did not take this sign-in's code.", f.Return)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(pctx, raw)
	if err != nil || subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		if err == nil {
			err = errors.New("the nonce does not match")
		}
		s.log.Warn("sign-in refused: the ID token is not valid", "err", err)
		s.retry(w, r, "Sign-in failed", "The sign-in provider's answer could not be verified.", f.Return)
		return
	}
	c, err := s.claimsOf(r, p, idt, tok)
	if err != nil {
		s.internal(w, r, "reading the ID token's claims", err)
		return
	}
	se, err := s.sessionFor(ctx, idt.Subject, c)
	if err != nil {
		s.internal(w, r, "deciding the role of "+idt.Subject, err)
		return
	}
	secret, err := s.st.CreateSession(ctx, se)
	if err != nil {
		s.internal(w, r, "saving a session", err)
		return
	}
	if old, err := r.Cookie(SessionCookie); err == nil && old.Value != "" {
		// Signing in again, maybe as someone else: the old session ends.
		_ = s.st.DeleteSession(ctx, old.Value)
	}
	s.log.Info("signed in", "subject", se.Subject, "email", se.Email, "role", se.Role, "provider", se.Provider)
	http.SetCookie(w, hostCookie(SessionCookie, secret, s.cfg.SessionLifetime))
	http.Redirect(w, r, f.Return, http.StatusSeeOther)
}

// sessionFor is the platform session of a person the provider vouched
// for, with the role their claims give them.
func (s *SignIn) sessionFor(ctx context.Context, subject string, c claims) (store.Session, error) {
	se := store.Session{Subject: subject, Email: c.Email, EmailVerified: c.EmailVerified, Name: c.Name, Groups: c.Groups,
		ExpiresAt: time.Now().Add(s.cfg.SessionLifetime)}
	var err error
	se.Role, se.Provider, err = s.role(ctx, c)
	return se, err
}

// hostCookie is one of the apex's cookies: __Host- (so Secure, Path=/ and
// no Domain), out of scripts' reach, and sent on top-level navigations
// from elsewhere (the provider's redirect back) but not on other
// cross-site requests. maxAge below zero deletes it.
func hostCookie(name, value string, maxAge time.Duration) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge.Seconds())
	}
	return c
}

// sealFlow encodes f with an HMAC of key, so that the browser carries it
// but cannot change it.
func sealFlow(key []byte, f flow) string {
	b, _ := json.Marshal(f) // a struct of strings and an int
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + mac(key, "login", payload)
}

// readFlow returns the flow of r's login cookie, if its HMAC holds and it
// has not expired.
func readFlow(r *http.Request, key []byte) (flow, bool) {
	var f flow
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return f, false
	}
	payload, sum, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sum), []byte(mac(key, "login", payload))) {
		return f, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(b, &f) != nil || time.Now().Unix() >= f.Expires {
		return f, false
	}
	return f, true
}

// mac is the HMAC-SHA256 of msg under key, for purpose (so that a value
// signed for one use is worth nothing in another).
func mac(key []byte, purpose, msg string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// csrfToken is the sign-out form's token of the session whose ID (the
// secret's hash) is id: a page of another origin cannot know it.
func csrfToken(key []byte, id string) string { return mac(key, "logout", id) }

// random is 256 random bits, for state and nonce.
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// apexReturn keeps a return address on the apex: a path (with its
// query), never a URL or a scheme-relative //host, nor a step of sign-in
// itself (a loop) other than the hand-off to a solution.
func apexReturn(p string) string {
	u, err := url.Parse(p)
	if err != nil || gateway.LocalPath(p) != p || strings.ContainsRune(p, '\\') || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	if strings.HasPrefix(u.Path, "/auth/") && u.Path != "/auth/solution" {
		return "/"
	}
	return p
}

// retry answers a sign-in that failed with a page that offers to sign in
// again, back to where the person was going.
func (s *SignIn) retry(w http.ResponseWriter, r *http.Request, title, why, back string) {
	s.notice(w, r, http.StatusBadRequest, web.Notice{Title: title, Paragraphs: []string{why, "Nothing was signed in. Try again."},
		Link: "/auth/login?" + url.Values{"return": {apexReturn(back)}}.Encode(), LinkText: "Sign in again"})
}

func (s *SignIn) providerDown(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("the OpenID provider does not answer", "issuer", s.cfg.Issuer, "err", err)
	s.notice(w, r, http.StatusBadGateway, web.Notice{Title: "Sign-in is unavailable",
		Paragraphs: []string{"The sign-in provider does not answer at the moment. Try again in a while."}})
}

func (s *SignIn) internal(w http.ResponseWriter, r *http.Request, doing string, err error) {
	s.log.Error(doing, "err", err)
	s.notice(w, r, http.StatusInternalServerError, web.Notice{Title: "Sign-in failed",
		Paragraphs: []string{"Something went wrong on aim's side while " + doing + ". Try again; if it goes on, tell the platform's admins."}})
}

func (s *SignIn) notConfigured(w http.ResponseWriter, r *http.Request) {
	s.notice(w, r, http.StatusForbidden, web.Notice{Title: "Sign-in is not configured",
		Paragraphs: []string{
			"This aim has no OpenID provider configured, so no one can sign in here.",
			"Its private solutions are open to API clients that send a personal access token of someone they admit, in the X-Aim-Token header. Ask the platform's admins for one.",
		},
		Link: "/", LinkText: "Back to the catalog"})
}
