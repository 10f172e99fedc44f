package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestPutProviderValidates(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		for _, c := range []struct {
			name string
			p    Provider
			ok   bool
		}{
			{"minimal", Provider{Name: "acme"}, true},
			{"full", Provider{Name: "acme-2", DisplayName: "ACME, Inc.", Email: "ai@acme.example", Webhook: "https://acme.example/hook"}, true},
			{"no name", Provider{}, false},
			{"not a label", Provider{Name: "Acme Inc"}, false},
			{"bad email", Provider{Name: "acme", Email: "not an address"}, false},
			{"webhook not http", Provider{Name: "acme", Webhook: "ftp://acme.example/"}, false},
			{"webhook relative", Provider{Name: "acme", Webhook: "/hook"}, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := s.PutProvider(context.Background(), &c.p)
				var ie *InputError
				switch {
				case c.ok && err != nil:
					t.Errorf("PutProvider(%+v) = %v", c.p, err)
				case !c.ok && !errors.As(err, &ie):
					t.Errorf("PutProvider(%+v) = %v, want an InputError", c.p, err)
				}
			})
		}
	})
}

func TestProviders(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		c := useClock(s)
		first := c.now()
		p := &Provider{Name: "acme", DisplayName: "ACME", Email: "ai@acme.example"}
		if err := s.PutProvider(ctx, p); err != nil {
			t.Fatal(err)
		}
		if !p.CreatedAt.Equal(first) {
			t.Errorf("PutProvider set CreatedAt %v, want %v", p.CreatedAt, first)
		}
		c.advance(time.Hour)
		upd := &Provider{Name: "acme", DisplayName: "ACME, Inc.", Webhook: "https://acme.example/hook"}
		if err := s.PutProvider(ctx, upd); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetProvider(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		want := Provider{Name: "acme", DisplayName: "ACME, Inc.", Webhook: "https://acme.example/hook", CreatedAt: first}
		if !got.CreatedAt.Equal(first) || !upd.CreatedAt.Equal(first) {
			t.Errorf("an update moved CreatedAt to %v (in p: %v), want %v", got.CreatedAt, upd.CreatedAt, first)
		}
		got.CreatedAt = first
		if *got != want {
			t.Errorf("GetProvider = %+v, want %+v", *got, want)
		}
		if _, err := s.GetProvider(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetProvider(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.PutProvider(ctx, &Provider{Name: "globex"}); err != nil {
			t.Fatal(err)
		}
		list, err := s.ListProviders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, p := range list {
			ns = append(ns, p.Name)
		}
		if !slices.Equal(ns, []string{"acme", "globex"}) {
			t.Errorf("ListProviders = %v", ns)
		}
	})
}

func TestDeleteProvider(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for _, p := range []string{"acme", "globex"} {
			if err := s.PutProvider(ctx, &Provider{Name: p}); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range []string{"two", "one"} {
			if err := s.Put(ctx, &Solution{Name: n, Owner: "acme", Manifest: manifest(t, n), State: "ready"}); err != nil {
				t.Fatal(err)
			}
		}
		acmeTok, _, err := s.CreateToken(ctx, Token{Name: "ci", Role: RoleProvider, Provider: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		globexTok, _, err := s.CreateToken(ctx, Token{Name: "ci", Role: RoleProvider, Provider: "globex"})
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.CreateSession(ctx, Session{Subject: "u1", Role: RoleProvider, Provider: "acme", ExpiresAt: s.now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}

		var inUse *InUseError
		if err := s.DeleteProvider(ctx, "acme"); !errors.As(err, &inUse) || inUse.Provider != "acme" || !slices.Equal(inUse.Solutions, []string{"one", "two"}) {
			t.Fatalf("DeleteProvider of an owner = %v, want an InUseError naming one and two", err)
		}
		if _, err := s.VerifyToken(ctx, acmeTok); err != nil {
			t.Errorf("a refused DeleteProvider still took its token: %v", err)
		}
		for _, n := range []string{"one", "two"} {
			if err := s.Delete(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.DeleteProvider(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetProvider(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetProvider after DeleteProvider = %v", err)
		}
		if _, err := s.VerifyToken(ctx, acmeTok); !errors.Is(err, ErrTokenUnknown) {
			t.Errorf("the deleted provider's token verifies: %v", err)
		}
		if _, err := s.GetSession(ctx, sess); !errors.Is(err, ErrNotFound) {
			t.Errorf("the deleted provider's session lives on: %v", err)
		}
		if _, err := s.VerifyToken(ctx, globexTok); err != nil {
			t.Errorf("another provider's token went too: %v", err)
		}
		if err := s.DeleteProvider(ctx, "acme"); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteProvider(unknown) = %v, want ErrNotFound", err)
		}
	})
}
