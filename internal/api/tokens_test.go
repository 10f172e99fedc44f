package api

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/store"
)

func TestCreateToken(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	sec, _, err := w.st.CreateToken(context.Background(), store.Token{Name: "short", Role: store.RoleProvider, Provider: "acme", ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	w.secrets["acme-1h"] = sec
	cases := []struct {
		name, who, body string
		status          int
		says            string
		// want checks the token made.
		want func(t *testing.T, tok TokenInfo)
	}{
		{name: "a provider token for 90 days", who: "admin", body: `{"name": "laptop", "provider": "acme", "expires": "90d"}`, status: 201,
			want: func(t *testing.T, tok TokenInfo) {
				if tok.Role != "provider" || tok.Provider != "acme" || tok.Name != "laptop" ||
					time.Until(tok.ExpiresAt) < 89*24*time.Hour || time.Until(tok.ExpiresAt) > 90*24*time.Hour {
					t.Errorf("made %+v", tok)
				}
			}},
		{name: "a visitor's token", who: "admin", body: `{"role": "visitor", "email": "v@example.com", "groups": ["staff"]}`, status: 201,
			want: func(t *testing.T, tok TokenInfo) {
				if tok.Role != "visitor" || tok.Email != "v@example.com" || len(tok.Groups) != 1 || !tok.ExpiresAt.IsZero() {
					t.Errorf("made %+v", tok)
				}
			}},
		{name: "an admin token", who: "admin", body: `{"role": "admin", "expires": "12h"}`, status: 201},
		{name: "a provider's own, by default", who: "acme", body: `{"name": "ci"}`, status: 201,
			want: func(t *testing.T, tok TokenInfo) {
				if tok.Role != "provider" || tok.Provider != "acme" {
					t.Errorf("made %+v", tok)
				}
			}},
		{name: "no longer than the token asking", who: "acme-1h", body: `{}`, status: 201,
			want: func(t *testing.T, tok TokenInfo) {
				if tok.ExpiresAt.IsZero() || time.Until(tok.ExpiresAt) > time.Hour {
					t.Errorf("a token made by one expiring in an hour expires at %v", tok.ExpiresAt)
				}
			}},
		{name: "outliving the token asking", who: "acme-1h", body: `{"expires": "90d"}`, status: 403,
			says: "expires: a token cannot outlive the token that creates it"},
		{name: "unknown role", who: "admin", body: `{"role": "root"}`, status: 422, says: `role: "root" is not one of admin, provider, visitor`},
		{name: "no role", who: "admin", body: `{}`, status: 422, says: "role: missing"},
		{name: "not a duration", who: "admin", body: `{"provider": "acme", "expires": "3x"}`, status: 422,
			says: `expires: "3x" is not a duration such as 90d or 12h`},
		{name: "a negative duration", who: "admin", body: `{"provider": "acme", "expires": "-1h"}`, status: 422, says: "expires:"},
		{name: "unknown provider", who: "admin", body: `{"provider": "nope"}`, status: 422, says: `provider: provider "nope" does not exist`},
		{name: "a visitor without an address", who: "admin", body: `{"role": "visitor"}`, status: 422, says: "email: a visitor's token stands for a person"},
		{name: "a bad address", who: "admin", body: `{"role": "visitor", "email": "nobody"}`, status: 422, says: `email: "nobody" is not an e-mail address`},
		{name: "an admin with an address", who: "admin", body: `{"role": "admin", "email": "a@example.com"}`, status: 422, says: "only a visitor's token stands for a person"},
		{name: "a provider for another", who: "acme", body: `{"provider": "beta"}`, status: 403,
			says: "a provider creates provider tokens for itself only: creating a provider token for beta needs an admin token"},
		{name: "a provider for an admin", who: "acme", body: `{"role": "admin"}`, status: 403, says: "creating an admin token needs an admin token"},
		{name: "a visitor", who: "visitor", body: `{}`, status: 403, says: "creating a token needs a provider or an admin token"},
		{name: "not JSON", who: "admin", body: `role=admin`, status: 400, says: "the request body is not the JSON this call takes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAPI(t, fixtures(t), w.st)
			rec := call(t, a, "POST", "/api/v1/tokens", w.secrets[c.who], strings.NewReader(c.body), "application/json")
			if rec.Code != c.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, c.status)
			}
			if c.status != http.StatusCreated {
				if msg := errorOf(t, rec); !strings.Contains(msg, c.says) {
					t.Errorf("%q does not say %q", msg, c.says)
				}
				return
			}
			var nt NewToken
			if err := json.Unmarshal(rec.Body.Bytes(), &nt); err != nil {
				t.Fatal(err)
			}
			if c.want != nil {
				c.want(t, nt.Token)
			}
			// The secret works, once, as what it was made for.
			var me Me
			decode(t, call(t, a, "GET", "/api/v1/me", nt.Secret, nil, ""), &me)
			if me.TokenID != nt.Token.ID || me.Role != nt.Token.Role {
				t.Errorf("the new secret is %+v, want token %s", me, nt.Token.ID)
			}
			if strings.Contains(call(t, a, "GET", "/api/v1/tokens", w.secrets["admin"], nil, "").Body.String(), nt.Secret) {
				t.Error("the listing shows the secret")
			}
		})
	}
}

func TestListAndRevokeTokens(t *testing.T) {
	w := newWorld(t, filepath.Join(t.TempDir(), "aim.db"))
	a := newAPI(t, fixtures(t), w.st)
	list := func(who string) []TokenInfo {
		var l struct{ Tokens []TokenInfo }
		decode(t, call(t, a, "GET", "/api/v1/tokens", w.secrets[who], nil, ""), &l)
		return l.Tokens
	}
	var betaID string
	for _, tok := range list("beta") {
		if tok.Provider != "beta" {
			t.Errorf("beta lists %+v", tok)
		}
		betaID = tok.ID
	}
	all := list("admin")
	if len(all) != 6 {
		t.Errorf("the admin lists %d tokens, want the 6 made", len(all))
	}
	for _, tok := range all {
		if tok.Name == "leaked" && tok.RevokedAt.IsZero() || tok.Name == "old" && tok.ExpiresAt.IsZero() {
			t.Errorf("%+v", tok)
		}
	}
	if rec := call(t, a, "DELETE", "/api/v1/tokens/"+betaID, w.secrets["acme"], nil, ""); rec.Code != http.StatusNotFound {
		t.Errorf("acme revoking beta's token: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, a, "DELETE", "/api/v1/tokens/nope", w.secrets["admin"], nil, ""); rec.Code != http.StatusNotFound {
		t.Errorf("revoking no token: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, a, "DELETE", "/api/v1/tokens/"+betaID, w.secrets["beta"], nil, ""); rec.Code != http.StatusNoContent {
		t.Errorf("beta revoking its own token: %d %s", rec.Code, rec.Body)
	}
	rec := call(t, a, "GET", "/api/v1/me", w.secrets["beta"], nil, "")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "the API token was revoked") {
		t.Errorf("a revoked token: %d %s", rec.Code, rec.Body)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "12h": 12 * time.Hour, "1d12h": 36 * time.Hour, "30m": 30 * time.Minute, "0d": 0,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "3x", "1.5d", "-1d", "1d-2h", "90 days"} {
		if _, err := ParseDuration(in); err == nil || !strings.Contains(err.Error(), "is not a duration such as 90d or 12h") {
			t.Errorf("ParseDuration(%q): %v", in, err)
		}
	}
}
