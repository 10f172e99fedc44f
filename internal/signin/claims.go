package signin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/aimhub/aim/internal/store"
)

// claims are what aim reads of a person from the provider.
type claims struct {
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	// Provider is the value of Config.ProviderClaim, if it is a string.
	Provider string
}

// claimsOf reads the ID token's claims, and the userinfo endpoint's when
// the ID token has no e-mail address (providers differ in what they put
// where).
func (s *SignIn) claimsOf(r *http.Request, p *provider, idt *oidc.IDToken, tok *oauth2.Token) (claims, error) {
	var raw map[string]json.RawMessage
	if err := idt.Claims(&raw); err != nil {
		return claims{}, err
	}
	if _, hasEmail := raw["email"]; !hasEmail && p.oidc.UserInfoEndpoint() != "" {
		info, err := p.oidc.UserInfo(oidc.ClientContext(r.Context(), s.cfg.HTTPClient), oauth2.StaticTokenSource(tok))
		if err != nil {
			return claims{}, fmt.Errorf("asking the provider's userinfo: %w", err)
		}
		if info.Subject != idt.Subject {
			return claims{}, errors.New("the userinfo answer is about another subject")
		}
		var more map[string]json.RawMessage
		if err := info.Claims(&more); err != nil {
			return claims{}, err
		}
		for k, v := range more {
			if _, ok := raw[k]; !ok {
				raw[k] = v
			}
		}
	}
	var c claims
	_ = json.Unmarshal(raw["email"], &c.Email)
	_ = json.Unmarshal(raw["name"], &c.Name)
	c.EmailVerified = boolClaim(raw["email_verified"])
	c.Groups = stringsClaim(raw["groups"])
	if s.cfg.ProviderClaim != "" {
		_ = json.Unmarshal(raw[s.cfg.ProviderClaim], &c.Provider)
	}
	return c, nil
}

// boolClaim reads a boolean claim, which some providers send as a string.
func boolClaim(v json.RawMessage) bool {
	var b bool
	if json.Unmarshal(v, &b) == nil {
		return b
	}
	var s string
	return json.Unmarshal(v, &s) == nil && strings.EqualFold(s, "true")
}

// stringsClaim reads a list of strings, or one string as a list of one.
func stringsClaim(v json.RawMessage) []string {
	var l []string
	if json.Unmarshal(v, &l) == nil {
		return slices.DeleteFunc(l, func(s string) bool { return s == "" })
	}
	var s string
	if json.Unmarshal(v, &s) == nil && s != "" {
		return []string{s}
	}
	return nil
}

// role is what a signed-in person may do: an admin when in
// Config.AdminGroup; a provider when Config.ProviderClaim names an
// existing provider; a visitor otherwise.
func (s *SignIn) role(ctx context.Context, c claims) (store.Role, string, error) {
	if s.cfg.AdminGroup != "" && slices.Contains(c.Groups, s.cfg.AdminGroup) {
		return store.RoleAdmin, "", nil
	}
	if s.cfg.ProviderClaim == "" || c.Provider == "" {
		return store.RoleVisitor, "", nil
	}
	_, err := s.st.GetProvider(ctx, c.Provider)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.log.Warn("the provider claim names no provider of this aim: signed in as a visitor",
			"claim", s.cfg.ProviderClaim, "provider", c.Provider, "email", c.Email)
		return store.RoleVisitor, "", nil
	case err != nil:
		return "", "", err
	}
	return store.RoleProvider, c.Provider, nil
}
