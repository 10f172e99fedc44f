package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestCreateSessionValidates(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		exp := s.now().Add(time.Hour)
		apex, err := s.CreateSession(ctx, Session{Subject: "u1", Role: RoleVisitor, ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		parent, _ := s.GetSession(ctx, apex)
		child, err := s.CreateSession(ctx, Session{Subject: "u1", Role: RoleVisitor, Solution: "hello", Parent: parent.ID, ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		childSession, _ := s.GetSession(ctx, child)
		var (
			input   *InputError
			unknown *UnknownProviderError
		)
		for _, tc := range []struct {
			name string
			in   Session
			want any // a pointer to the error type, or an error for errors.Is
		}{
			{"no subject", Session{Role: RoleVisitor, ExpiresAt: exp}, &input},
			{"no role", Session{Subject: "u", ExpiresAt: exp}, &input},
			{"no expiry", Session{Subject: "u", Role: RoleVisitor}, &input},
			{"provider without provider", Session{Subject: "u", Role: RoleProvider, ExpiresAt: exp}, &input},
			{"visitor with a provider", Session{Subject: "u", Role: RoleVisitor, Provider: "acme", ExpiresAt: exp}, &input},
			{"solution without parent", Session{Subject: "u", Role: RoleVisitor, Solution: "hello", ExpiresAt: exp}, &input},
			{"parent without solution", Session{Subject: "u", Role: RoleVisitor, Parent: parent.ID, ExpiresAt: exp}, &input},
			{"unknown parent", Session{Subject: "u", Role: RoleVisitor, Solution: "hello", Parent: "ffff", ExpiresAt: exp}, ErrNotFound},
			{"per-solution parent", Session{Subject: "u", Role: RoleVisitor, Solution: "other", Parent: childSession.ID, ExpiresAt: exp}, &input},
			{"unknown provider", Session{Subject: "u", Role: RoleProvider, Provider: "nobody", ExpiresAt: exp}, &unknown},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreateSession(ctx, tc.in)
				if want, ok := tc.want.(error); ok {
					if !errors.Is(err, want) {
						t.Errorf("CreateSession = %v, want %v", err, want)
					}
				} else if !errors.As(err, tc.want) {
					t.Errorf("CreateSession = %v, want a %T", err, tc.want)
				}
			})
		}
	})
}

func TestSessions(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		if err := s.PutProvider(ctx, &Provider{Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		in := Session{Subject: "sub-1", Email: "ann@acme.example", EmailVerified: true, Name: "Ann", Groups: []string{"acme-devs"},
			Role: RoleProvider, Provider: "acme", ExpiresAt: c.now().Add(8 * time.Hour), ID: "ignored"}
		sec, err := s.CreateSession(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSession(ctx, sec)
		if err != nil {
			t.Fatal(err)
		}
		want := in
		want.ID, want.CreatedAt = hashSecret(sec), c.now()
		if !equalSessions(*got, want) {
			t.Errorf("GetSession = %+v, want %+v", *got, want)
		}
		var n int
		if err := s.queryRow(ctx, `SELECT count(*) FROM sessions WHERE id_hash=?`, sec).Scan(&n); err != nil || n != 0 {
			t.Errorf("the secret itself is stored (%d rows, %v)", n, err)
		}
		if _, err := s.GetSession(ctx, sec+"x"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetSession(unknown) = %v, want ErrNotFound", err)
		}

		// A per-solution session ends no later than its parent.
		child, err := s.CreateSession(ctx, Session{Subject: "sub-1", Role: RoleProvider, Provider: "acme",
			Solution: "hello", Parent: got.ID, ExpiresAt: c.now().Add(48 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := s.GetSession(ctx, child)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Solution != "hello" || cs.Parent != got.ID || !cs.ExpiresAt.Equal(got.ExpiresAt) {
			t.Errorf("the per-solution session is %+v; want solution hello, parent %s, expiring with it", cs, got.ID)
		}

		c.advance(8*time.Hour - time.Millisecond)
		if _, err := s.GetSession(ctx, sec); err != nil {
			t.Errorf("a session in its last millisecond: %v", err)
		}
		c.advance(time.Millisecond)
		for _, which := range []string{sec, child} {
			if _, err := s.GetSession(ctx, which); !errors.Is(err, ErrNotFound) {
				t.Errorf("an expired session = %v, want ErrNotFound", err)
			}
		}
	})
}

func equalSessions(a, b Session) bool {
	return a.ID == b.ID && a.Subject == b.Subject && a.Email == b.Email && a.EmailVerified == b.EmailVerified && a.Name == b.Name && slices.Equal(a.Groups, b.Groups) &&
		a.Role == b.Role && a.Provider == b.Provider && a.Solution == b.Solution && a.Parent == b.Parent &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt)
}

// signIn makes a platform session and a per-solution one from it, for
// each of sols.
func signIn(t *testing.T, s *Store, subject string, ttl time.Duration, sols ...string) (apex string, children []string) {
	t.Helper()
	ctx := context.Background()
	apex, err := s.CreateSession(ctx, Session{Subject: subject, Role: RoleVisitor, ExpiresAt: s.now().Add(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	parent, err := s.GetSession(ctx, apex)
	if err != nil {
		t.Fatal(err)
	}
	for _, sol := range sols {
		sec, err := s.CreateSession(ctx, Session{Subject: subject, Role: RoleVisitor, Solution: sol, Parent: parent.ID, ExpiresAt: parent.ExpiresAt})
		if err != nil {
			t.Fatal(err)
		}
		children = append(children, sec)
	}
	return apex, children
}

func alive(t *testing.T, s *Store, secs ...string) []bool {
	t.Helper()
	var out []bool
	for _, sec := range secs {
		_, err := s.GetSession(context.Background(), sec)
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		out = append(out, err == nil)
	}
	return out
}

func TestDeleteSession(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		apex, children := signIn(t, s, "ann", time.Hour, "one", "two")
		other, otherChildren := signIn(t, s, "bob", time.Hour, "one")

		// Signing out of one solution leaves the rest.
		if err := s.DeleteSession(ctx, children[0]); err != nil {
			t.Fatal(err)
		}
		if got := alive(t, s, apex, children[0], children[1]); !slices.Equal(got, []bool{true, false, true}) {
			t.Errorf("after ending a per-solution session, alive: %v", got)
		}
		// Signing out of the platform ends its per-solution sessions too.
		if err := s.DeleteSession(ctx, apex); err != nil {
			t.Fatal(err)
		}
		if got := alive(t, s, apex, children[1], other, otherChildren[0]); !slices.Equal(got, []bool{false, false, true, true}) {
			t.Errorf("after signing out of the platform, alive: %v, want only bob's", got)
		}
		if err := s.DeleteSession(ctx, apex); err != nil {
			t.Errorf("signing out twice = %v, want nil", err)
		}
	})
}

// Removing a solution ends the sessions made for it.
func TestDeleteSolutionEndsItsSessions(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, n := range []string{"one", "two"} {
			if err := s.Put(ctx, &Solution{Name: n, Manifest: manifest(t, n), State: "ready"}); err != nil {
				t.Fatal(err)
			}
		}
		apex, children := signIn(t, s, "ann", time.Hour, "one", "two")
		code, err := s.CreateCode(ctx, apex, "one", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "one"); err != nil {
			t.Fatal(err)
		}
		if got := alive(t, s, apex, children[0], children[1]); !slices.Equal(got, []bool{true, false, true}) {
			t.Errorf("after removing solution one, alive: %v", got)
		}
		if _, err := s.RedeemCode(ctx, code, "one"); !errors.Is(err, ErrCodeInvalid) {
			t.Errorf("a code for a removed solution redeems: %v", err)
		}
	})
}

func TestDeleteExpired(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		short, shortChildren := signIn(t, s, "ann", time.Minute, "one")
		long, longChildren := signIn(t, s, "bob", time.Hour, "one")
		if _, err := s.CreateCode(ctx, long, "one", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		keptCode, err := s.CreateCode(ctx, long, "two", 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteExpired(ctx); err != nil || n != 0 {
			t.Errorf("DeleteExpired before anything expired = %d, %v", n, err)
		}
		c.advance(time.Minute)
		// Ann's two sessions and bob's first code.
		if n, err := s.DeleteExpired(ctx); err != nil || n != 3 {
			t.Errorf("DeleteExpired = %d, %v; want 3", n, err)
		}
		var rows int
		if err := s.queryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&rows); err != nil || rows != 2 {
			t.Errorf("%d sessions left, want bob's 2 (%v)", rows, err)
		}
		if got := alive(t, s, short, shortChildren[0], long, longChildren[0]); !slices.Equal(got, []bool{false, false, true, true}) {
			t.Errorf("alive after DeleteExpired: %v", got)
		}
		if _, err := s.RedeemCode(ctx, keptCode, "two"); err != nil {
			t.Errorf("the unexpired code: %v", err)
		}
	})
}
