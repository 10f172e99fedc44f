package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"time"

	"github.com/aimhub/aim/internal/store"
)

// TokenInfo is an API token as the API shows it: never its secret, which
// aim does not keep.
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Provider  string    `json:"provider,omitempty"`
	Email     string    `json:"email,omitempty"`
	Groups    []string  `json:"groups,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// ExpiresAt, LastUsedAt and RevokedAt are absent for never.
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`
	LastUsedAt time.Time `json:"lastUsedAt,omitzero"`
	RevokedAt  time.Time `json:"revokedAt,omitzero"`
}

func tokenInfo(t *store.Token) TokenInfo {
	return TokenInfo{ID: t.ID, Name: t.Name, Role: string(t.Role), Provider: t.Provider, Email: t.Email, Groups: t.Groups,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	// Name tells the token apart in listings, e.g. "laptop".
	Name string `json:"name,omitempty"`
	// Role is admin, provider or visitor. Empty means provider when
	// Provider is set or a provider asks.
	Role string `json:"role,omitempty"`
	// Provider is whose a provider token is; a provider's own when a
	// provider asks and leaves it out.
	Provider string `json:"provider,omitempty"`
	// Email and Groups are whom a visitor's token stands for; Email is
	// required for one.
	Email  string   `json:"email,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Expires is how long the token works, e.g. "90d" or "12h". Empty
	// means never (for a provider asking: when its own token expires).
	Expires string `json:"expires,omitempty"`
}

// NewToken answers POST /api/v1/tokens: the token, and its secret, shown
// this once.
type NewToken struct {
	Token  TokenInfo `json:"token"`
	Secret string    `json:"secret"`
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, g *grant) {
	ts, err := a.tokens.ListTokens(r.Context(), tokenScope(g.caller))
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]TokenInfo, 0, len(ts))
	for i := range ts {
		out = append(out, tokenInfo(&ts[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, g *grant) {
	var req TokenRequest
	if err := readJSON(r, &req); err != nil {
		a.fail(w, err)
		return
	}
	t, err := req.token(time.Now())
	if err != nil {
		a.fail(w, err)
		return
	}
	if err := mayIssue(g.caller, &t); err != nil {
		a.fail(w, err)
		return
	}
	if t.Role == "" {
		a.fail(w, unprocessable("role: missing: give admin, provider (with a provider) or visitor (with an email)"))
		return
	}
	if t.Role == store.RoleProvider && t.Provider == "" {
		a.fail(w, unprocessable("provider: a provider token names its provider"))
		return
	}
	sec, made, err := a.tokens.CreateToken(r.Context(), t)
	if errors.As(err, new(*store.UnknownProviderError)) {
		a.fail(w, unprocessable(fmt.Sprintf("provider: provider %q does not exist: add it first (aim provider add %s)", t.Provider, t.Provider)))
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("created an API token", "id", made.ID, "name", made.Name, "role", made.Role, "provider", made.Provider, "by", g.id.TokenID)
	writeJSON(w, http.StatusCreated, NewToken{Token: tokenInfo(made), Secret: sec})
}

func unprocessable(msg string) error {
	return &statusError{status: http.StatusUnprocessableEntity, msg: msg}
}

// token checks what req asks for, field by field, and makes the token
// to store.
func (req TokenRequest) token(now time.Time) (store.Token, error) {
	t := store.Token{Name: req.Name, Role: store.Role(req.Role), Provider: req.Provider, Email: req.Email, Groups: req.Groups}
	if t.Role == "" && t.Provider != "" {
		t.Role = store.RoleProvider
	}
	if t.Role != "" && !t.Role.Valid() {
		return t, unprocessable(fmt.Sprintf("role: %q is not one of admin, provider, visitor", req.Role))
	}
	if t.Provider != "" && t.Role != store.RoleProvider {
		return t, unprocessable(fmt.Sprintf("provider: only a provider token names a provider, not a %s token", t.Role))
	}
	if t.Role == store.RoleVisitor {
		if t.Email == "" {
			return t, unprocessable("email: a visitor's token stands for a person: give their e-mail address")
		}
		if a, err := mail.ParseAddress(t.Email); err != nil || a.Address != t.Email {
			return t, unprocessable(fmt.Sprintf("email: %q is not an e-mail address", t.Email))
		}
	} else if t.Email != "" || len(t.Groups) > 0 {
		return t, unprocessable("email, groups: only a visitor's token stands for a person")
	}
	if req.Expires != "" {
		d, err := ParseDuration(req.Expires)
		if err != nil {
			return t, unprocessable("expires: " + err.Error())
		}
		if d <= 0 {
			return t, unprocessable(fmt.Sprintf("expires: %q: a token expires some time from now", req.Expires))
		}
		t.ExpiresAt = now.Add(d)
	}
	return t, nil
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request, g *grant) {
	id := r.PathValue("id")
	if err := a.tokens.RevokeToken(r.Context(), id); err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("revoked an API token", "id", id, "by", g.id.TokenID)
	w.WriteHeader(http.StatusNoContent)
}

// Me answers GET /api/v1/me: who the caller is. An anonymous caller has
// no role.
type Me struct {
	Role      string   `json:"role"`
	Provider  string   `json:"provider,omitempty"`
	Email     string   `json:"email,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	TokenID   string   `json:"tokenId,omitempty"`
	TokenName string   `json:"tokenName,omitempty"`
	// ExpiresAt is when the caller's token stops working; absent for
	// never.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

func (a *API) me(w http.ResponseWriter, _ *http.Request, g *grant) {
	me := Me{Role: string(g.id.Role), Provider: g.id.Provider, Email: g.id.Email, Groups: g.id.Groups, TokenID: g.id.TokenID}
	if g.token != nil {
		me.TokenName, me.ExpiresAt = g.token.Name, g.token.ExpiresAt
	}
	writeJSON(w, http.StatusOK, me)
}
