package store

import (
	"context"
	"errors"
	"testing"
)

func TestRegistryLogins(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.PutProvider(ctx, &Provider{Name: "acme"}); err != nil {
			t.Fatal(err)
		}
		for _, l := range []*RegistryLogin{
			{Owner: "acme", Host: "ghcr.io", Username: "old", Sealed: []byte("old")},
			{Owner: "acme", Host: "ghcr.io", Username: "bot", Sealed: []byte("\x00new\xff")},
			{Owner: "acme", Host: "127.0.0.1:5000", Username: "u", Sealed: []byte("p")},
			// Another owner's login to the same host is apart.
			{Owner: "rival", Host: "ghcr.io", Username: "r", Sealed: []byte("rival's")},
			{Owner: "", Host: "docker.io", Username: "a", Sealed: []byte("admins'")},
		} {
			if err := s.PutRegistryLogin(ctx, l); err != nil {
				t.Fatal(err)
			}
			if l.SetAt.IsZero() {
				t.Fatal("SetAt not set")
			}
		}
		got, err := s.ListRegistryLogins(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Host != "127.0.0.1:5000" || got[1].Username != "bot" || string(got[1].Sealed) != "\x00new\xff" {
			t.Fatalf("acme's logins: %+v", got)
		}
		hosts, err := s.PrivateHosts(ctx)
		if err != nil || len(hosts) != 3 || !hosts["docker.io"] || !hosts["ghcr.io"] || !hosts["127.0.0.1:5000"] {
			t.Fatalf("hosts: %v, %v", hosts, err)
		}
		if err := s.DeleteRegistryLogin(ctx, "acme", "ghcr.io"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRegistryLogin(ctx, "acme", "ghcr.io"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting it again: %v", err)
		}
		if got, _ := s.ListRegistryLogins(ctx, "rival"); len(got) != 1 {
			t.Errorf("the rival's login went with acme's: %+v", got)
		}
		// Deleting the provider deletes its logins.
		if err := s.DeleteProvider(ctx, "acme"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListRegistryLogins(ctx, "acme"); len(got) != 0 {
			t.Errorf("after deleting acme, its logins: %+v", got)
		}
		// The hosts stay known as private.
		if hosts, _ := s.PrivateHosts(ctx); len(hosts) != 3 {
			t.Errorf("after the logouts, the private hosts: %v", hosts)
		}
		// A login again after a logout is kept.
		if err := s.PutRegistryLogin(ctx, &RegistryLogin{Owner: "acme", Host: "ghcr.io", Username: "again", Sealed: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ListRegistryLogins(ctx, "acme"); len(got) != 1 || got[0].Username != "again" {
			t.Errorf("logged in again: %+v", got)
		}
	})
}
