package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCreateToken(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		if err := s.PutProvider(ctx, &Provider{Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		expires := c.now().Add(24 * time.Hour)
		var (
			input   *InputError
			unknown *UnknownProviderError
		)
		for _, tc := range []struct {
			name string
			in   Token
			want any // nil, or a pointer to the error type expected
		}{
			{"admin", Token{Name: "admin", Role: RoleAdmin}, nil},
			{"provider", Token{Name: "ci", Role: RoleProvider, Provider: "acme", ExpiresAt: expires}, nil},
			{"visitor", Token{Name: "pat", Role: RoleVisitor, Email: "ann@corp.example", Groups: []string{"staff", "eng"}}, nil},
			{"no role", Token{Name: "x"}, &input},
			{"unknown role", Token{Name: "x", Role: "root"}, &input},
			{"provider without provider", Token{Name: "x", Role: RoleProvider}, &input},
			{"admin with a provider", Token{Name: "x", Role: RoleAdmin, Provider: "acme"}, &input},
			{"admin with groups", Token{Name: "x", Role: RoleAdmin, Groups: []string{"g"}}, &input},
			{"unknown provider", Token{Name: "x", Role: RoleProvider, Provider: "nobody"}, &unknown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sec, tok, err := s.CreateToken(ctx, tc.in)
				if tc.want != nil {
					if !errors.As(err, tc.want) {
						t.Errorf("CreateToken = %v, want a %T", err, tc.want)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sec, TokenPrefix))
				if !strings.HasPrefix(sec, TokenPrefix) || err != nil || len(raw) != 32 {
					t.Errorf("secret %q is not aim_ and 32 bytes in base64url", sec)
				}
				want := tc.in
				want.ID, want.CreatedAt = tok.ID, c.now()
				if tok.ID == "" || !equalTokens(*tok, want) {
					t.Errorf("CreateToken returned %+v, want %+v", *tok, want)
				}
				got, err := s.VerifyToken(ctx, sec)
				if err != nil {
					t.Fatal(err)
				}
				want.LastUsedAt = c.now()
				if !equalTokens(*got, want) {
					t.Errorf("VerifyToken = %+v, want %+v", *got, want)
				}
				var stored string
				if err := s.queryRow(ctx, `SELECT hash FROM tokens WHERE id=?`, tok.ID).Scan(&stored); err != nil {
					t.Fatal(err)
				}
				if h := sha256.Sum256([]byte(sec)); stored != hex.EncodeToString(h[:]) {
					t.Errorf("stored %q, not the SHA-256 of the secret", stored)
				}
			})
		}
	})
}

func equalTokens(a, b Token) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Role == b.Role && a.Provider == b.Provider && a.Email == b.Email &&
		slices.Equal(a.Groups, b.Groups) && a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.LastUsedAt.Equal(b.LastUsedAt) && a.RevokedAt.Equal(b.RevokedAt)
}

func TestVerifyTokenRefusals(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		mk := func(tok Token) (string, string) {
			t.Helper()
			sec, made, err := s.CreateToken(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			return sec, made.ID
		}
		live, _ := mk(Token{Name: "live", Role: RoleAdmin, ExpiresAt: c.now().Add(time.Hour)})
		expiring, _ := mk(Token{Name: "expiring", Role: RoleAdmin, ExpiresAt: c.now().Add(time.Minute)})
		revoked, id := mk(Token{Name: "revoked", Role: RoleAdmin})
		if err := s.RevokeToken(ctx, id); err != nil {
			t.Fatal(err)
		}
		c.advance(time.Minute) // expiring's last moment has passed
		for _, tc := range []struct {
			name string
			sec  string
			want error
		}{
			{"live", live, nil},
			{"expired", expiring, ErrTokenExpired},
			{"revoked", revoked, ErrTokenRevoked},
			{"unknown", live + "x", ErrTokenUnknown},
			{"empty", "", ErrTokenUnknown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.VerifyToken(ctx, tc.sec); !errors.Is(err, tc.want) {
					t.Errorf("VerifyToken = %v, want %v", err, tc.want)
				}
			})
		}
	})
}

// A busy client's token is written as used at most once a minute, by
// however many aim processes share the database.
func TestLastUsedOnceAMinute(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, other := openStore(t, dsn), openStore(t, dsn)
		c := useClock(s)
		other.now = c.now
		sec, tok, err := s.CreateToken(ctx, Token{Name: "busy", Role: RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		stored := func() time.Time {
			t.Helper()
			var ms int64
			if err := s.queryRow(ctx, `SELECT last_used_at FROM tokens WHERE id=?`, tok.ID).Scan(&ms); err != nil {
				t.Fatal(err)
			}
			return fromMillis(ms)
		}
		first := c.now()
		for _, step := range []struct {
			after time.Duration
			by    *Store
			want  time.Time
		}{
			{0, s, first},
			{20 * time.Second, s, first},
			{19 * time.Second, other, first}, // other has no note, but the stored time is recent
			{20 * time.Second, s, first},
			{time.Second, s, first.Add(time.Minute)},
			{30 * time.Second, s, first.Add(time.Minute)},
			{30 * time.Second, other, first.Add(2 * time.Minute)},
		} {
			c.advance(step.after)
			got, err := step.by.VerifyToken(ctx, sec)
			if err != nil {
				t.Fatal(err)
			}
			if !got.LastUsedAt.Equal(step.want) {
				t.Errorf("at +%v VerifyToken says LastUsedAt %v, want %v", c.now().Sub(first), got.LastUsedAt, step.want)
			}
			if got := stored(); !got.Equal(step.want) {
				t.Errorf("at +%v the stored LastUsedAt is %v, want %v", c.now().Sub(first), got, step.want)
			}
		}
	})
}

func TestListAndRevokeTokens(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		for _, p := range []string{"acme", "globex"} {
			if err := s.PutProvider(ctx, &Provider{Name: p}); err != nil {
				t.Fatal(err)
			}
		}
		if has, err := s.HasTokens(ctx); err != nil || has {
			t.Fatalf("a new store's HasTokens = %v, %v", has, err)
		}
		var ids []string
		for _, tok := range []Token{
			{Name: "admin", Role: RoleAdmin},
			{Name: "acme-ci", Role: RoleProvider, Provider: "acme"},
			{Name: "globex-ci", Role: RoleProvider, Provider: "globex"},
			{Name: "acme-deploy", Role: RoleProvider, Provider: "acme"},
		} {
			c.advance(time.Second)
			_, made, err := s.CreateToken(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, made.ID)
		}
		if has, err := s.HasTokens(ctx); err != nil || !has {
			t.Errorf("HasTokens = %v, %v, want true", has, err)
		}
		tokNames := func(l []Token) []string {
			var out []string
			for _, t := range l {
				out = append(out, t.Name)
			}
			return out
		}
		for _, tc := range []struct {
			provider string
			want     []string
		}{
			{"", []string{"admin", "acme-ci", "globex-ci", "acme-deploy"}},
			{"acme", []string{"acme-ci", "acme-deploy"}},
			{"nobody", nil},
		} {
			got, err := s.ListTokens(ctx, tc.provider)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tokNames(got), tc.want) {
				t.Errorf("ListTokens(%q) = %v, want %v", tc.provider, tokNames(got), tc.want)
			}
		}

		revokedAt := c.now()
		if err := s.RevokeToken(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}
		c.advance(time.Hour)
		if err := s.RevokeToken(ctx, ids[1]); err != nil {
			t.Errorf("revoking twice = %v", err)
		}
		got, _ := s.ListTokens(ctx, "acme")
		if !got[0].RevokedAt.Equal(revokedAt) || !got[1].RevokedAt.IsZero() {
			t.Errorf("after revoking acme-ci: RevokedAt %v and %v, want %v and never", got[0].RevokedAt, got[1].RevokedAt, revokedAt)
		}
		if err := s.RevokeToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeToken(unknown) = %v, want ErrNotFound", err)
		}
	})
}
