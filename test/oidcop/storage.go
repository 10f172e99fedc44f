package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// groupsScope may be requested (as Dex requires) but need not be: the
// groups claim is always given.
const groupsScope = "groups"

// codeLifetime bounds the time between a login and the exchange of its
// code; requestLifetime the time an authorization request is kept, so a
// long-running demo does not keep every abandoned one.
const (
	codeLifetime    = 5 * time.Minute
	requestLifetime = time.Hour
)

var errNotFound = errors.New("not found")

// storage keeps the provider's state in memory: the configured clients
// and users, the authorization requests under way, the access tokens
// issued and the signing key.
type storage struct {
	clients     map[string]*client
	groupsClaim string
	lifetime    time.Duration
	key         signingKey

	mu       sync.Mutex
	users    map[string]User
	requests map[string]*authRequest // by ID
	codes    map[string]string       // code -> request ID
	tokens   map[string]accessToken  // by ID
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func newStorage(cfg Config, loginPath string) (*storage, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("oidcop: making the signing key: %w", err)
	}
	s := &storage{
		clients:     map[string]*client{},
		groupsClaim: cfg.GroupsClaim,
		lifetime:    cfg.TokenLifetime,
		key:         signingKey{id: randomID()[:16], priv: priv},
		users:       map[string]User{},
		requests:    map[string]*authRequest{},
		codes:       map[string]string{},
		tokens:      map[string]accessToken{},
	}
	for _, c := range cfg.Clients {
		s.clients[c.ID] = &client{Client: c, loginPath: loginPath, lifetime: cfg.TokenLifetime}
	}
	for _, u := range cfg.Users {
		s.users[u.Username] = u
	}
	return s, nil
}

func randomID() string { return rand.Text() }

func (s *storage) setUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.Username] = u
}

// checkPassword returns the user if the password is theirs.
func (s *storage) checkPassword(username, password string) (User, bool) {
	s.mu.Lock()
	u, ok := s.users[username]
	s.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) != 1 {
		return User{}, false
	}
	return u, true
}

// completeLogin marks the request as authenticated for username.
func (s *storage) completeLogin(id, username string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	r.Subject, r.AuthTime, r.done = username, time.Now().UTC(), true
	return nil
}

// pendingRequest returns a copy of the request a login form is for.
func (s *storage) pendingRequest(id string) (authRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok || r.done {
		return authRequest{}, false
	}
	return *r, true
}

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	// PKCE with S256 is required of every client: a relying party that
	// forgets it, or falls back to plain, fails here as it would at a
	// strict provider.
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	r := &authRequest{
		ID:           randomID(),
		ClientID:     req.ClientID,
		RedirectURI:  req.RedirectURI,
		Scopes:       slices.Clone(req.Scopes),
		State:        req.State,
		Nonce:        req.Nonce,
		LoginHint:    req.LoginHint,
		ResponseType: req.ResponseType,
		ResponseMode: req.ResponseMode,
		Challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		created:      time.Now(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.requests {
		if time.Since(old.created) > requestLifetime {
			s.deleteRequest(id)
		}
	}
	s.requests[r.ID] = r
	return *r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return nil, fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	return *r, nil
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[s.codes[code]]
	if !ok {
		return nil, fmt.Errorf("code: %w", errNotFound)
	}
	if time.Since(r.AuthTime) > codeLifetime {
		return nil, errors.New("code expired")
	}
	return *r, nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.requests[id]; !ok {
		return fmt.Errorf("auth request %q: %w", id, errNotFound)
	}
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest is called once a code was exchanged, so a code works
// once.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteRequest(id)
	return nil
}

// deleteRequest forgets a request and its code; s.mu is held.
func (s *storage) deleteRequest(id string) {
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	t := accessToken{
		id:      randomID(),
		subject: req.GetSubject(),
		scopes:  slices.Clone(req.GetScopes()),
		expiry:  time.Now().Add(s.lifetime),
	}
	if r, ok := req.(authRequest); ok {
		t.clientID = r.ClientID
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.id] = t
	return t.id, t.expiry, nil
}

// token returns an unexpired access token.
func (s *storage) token(id, subject string) (accessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok || t.subject != subject {
		return accessToken{}, fmt.Errorf("access token: %w", errNotFound)
	}
	if time.Now().After(t.expiry) {
		return accessToken{}, errors.New("access token expired")
	}
	return t, nil
}

// Refresh tokens are not issued: the clients have no refresh_token grant.
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession ends what end_session names: the access tokens of the
// user at the client (all of the user's when the client is unknown).
// There is no sign-in session to end.
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.subject == userID && (clientID == "" || t.clientID == clientID) {
			delete(s.tokens, id)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenID, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, tokenID)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{publicKey{s.key}}, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q: %w", id, errNotFound)
	}
	return c, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("unknown client or wrong secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in favour of SetUserinfoFromRequest.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills an ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.fillUserinfo(info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.token(tokenID, subject)
	if err != nil {
		return err
	}
	return s.fillUserinfo(info, subject, t.scopes)
}

func (s *storage) fillUserinfo(info *oidc.UserInfo, subject string, scopes []string) error {
	s.mu.Lock()
	u, ok := s.users[subject]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("user %q: %w", subject, errNotFound)
	}
	info.Subject = u.Username
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(!u.EmailUnverified)
		if u.EmailUnverified {
			// The library omits a false email_verified; say it.
			info.AppendClaims("email_verified", false)
		}
	}
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	info.AppendClaims(s.groupsClaim, slices.Clone(groups))
	for name, v := range u.Claims {
		info.AppendClaims(name, v)
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := s.token(tokenID, subject)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	if err := s.fillUserinfo(info, subject, t.scopes); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active, resp.ClientID, resp.Scope = true, t.clientID, t.scopes
	resp.Expiration = oidc.FromTime(t.expiry)
	return nil
}

// GetPrivateClaimsFromScopes adds claims to JWT access tokens, which this
// provider does not issue.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// JWT profile grants are not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// authRequest is an authorization request under way. The storage hands
// out copies, so the op never reads one while a login changes it.
type authRequest struct {
	ID           string
	ClientID     string
	RedirectURI  string
	Scopes       []string
	State        string
	Nonce        string
	LoginHint    string
	ResponseType oidc.ResponseType
	ResponseMode oidc.ResponseMode
	Challenge    *oidc.CodeChallenge
	Subject      string
	AuthTime     time.Time

	created time.Time
	done    bool
}

var _ op.AuthRequest = authRequest{}

func (r authRequest) GetID() string                         { return r.ID }
func (r authRequest) GetACR() string                        { return "" }
func (r authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (r authRequest) GetAudience() []string                 { return []string{r.ClientID} }
func (r authRequest) GetAuthTime() time.Time                { return r.AuthTime }
func (r authRequest) GetClientID() string                   { return r.ClientID }
func (r authRequest) GetCodeChallenge() *oidc.CodeChallenge { return r.Challenge }
func (r authRequest) GetNonce() string                      { return r.Nonce }
func (r authRequest) GetRedirectURI() string                { return r.RedirectURI }
func (r authRequest) GetResponseType() oidc.ResponseType    { return r.ResponseType }
func (r authRequest) GetResponseMode() oidc.ResponseMode    { return r.ResponseMode }
func (r authRequest) GetScopes() []string                   { return r.Scopes }
func (r authRequest) GetState() string                      { return r.State }
func (r authRequest) GetSubject() string                    { return r.Subject }
func (r authRequest) Done() bool                            { return r.done }

// accessToken is an issued access token; the client holds it encrypted
// with the subject ("id:subject"), so userinfo can find it.
type accessToken struct {
	id       string
	subject  string
	clientID string
	scopes   []string
	expiry   time.Time
}

// client is a configured Client as the op sees it.
type client struct {
	Client
	loginPath string
	lifetime  time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                       { return c.ID }
func (c *client) RedirectURIs() []string              { return c.Client.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return c.Client.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }

// AuthMethod is basic, but the op takes the secret from the form body
// just as well (client_secret_post) since its AuthMethodPost is on.
func (c *client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType        { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string           { return c.loginPath + "?id=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.lifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) ClockSkew() time.Duration            { return 0 }
func (c *client) IsScopeAllowed(scope string) bool    { return scope == groupsScope }

// IDTokenUserinfoClaimsAssertion puts the profile and email claims into
// the ID token, not only into userinfo: relying parties (aim among them)
// read them from the ID token.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// signingKey signs ID tokens with RS256, the one algorithm every relying
// party supports.
type signingKey struct {
	id   string
	priv *rsa.PrivateKey
}

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.priv }
func (k signingKey) ID() string                                  { return k.id }

// publicKey is the signing key as the JWKS endpoint publishes it.
type publicKey struct{ k signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.priv.PublicKey }
