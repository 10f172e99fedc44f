package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestSecrets(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		box := []byte("\x00sealed\xff")
		for _, sec := range []*Secret{
			{Solution: "shop", Owner: "acme", Name: "B", Sealed: box},
			{Solution: "shop", Owner: "acme", Name: "A", Sealed: []byte("old")},
			{Solution: "shop", Owner: "acme", Name: "A", Sealed: []byte("new")},
			// Another owner's secret of the same name is apart.
			{Solution: "shop", Owner: "rival", Name: "A", Sealed: []byte("rival's")},
			{Solution: "shop", Owner: "", Name: "A", Sealed: []byte("admins'")},
		} {
			if err := s.PutSecret(ctx, sec); err != nil {
				t.Fatal(err)
			}
			if sec.SetAt.IsZero() {
				t.Fatal("SetAt not set")
			}
		}
		got, err := s.ListSecrets(ctx, "shop", "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Name != "A" || string(got[0].Sealed) != "new" || got[1].Name != "B" || !bytes.Equal(got[1].Sealed, box) {
			t.Fatalf("acme's secrets: %+v", got)
		}
		if got, _ := s.ListSecrets(ctx, "shop", ""); len(got) != 1 || string(got[0].Sealed) != "admins'" {
			t.Errorf("the admins' secrets: %+v", got)
		}
		if err := s.DeleteSecret(ctx, "shop", "acme", "A"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSecret(ctx, "shop", "acme", "A"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting it again: %v", err)
		}
		if got, _ := s.ListSecrets(ctx, "shop", "rival"); len(got) != 1 {
			t.Errorf("the rival's secret went with acme's: %+v", got)
		}
		// Removing the solution removes its secrets, whoever set them.
		if err := s.Delete(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		for _, owner := range []string{"acme", "rival", ""} {
			if got, _ := s.ListSecrets(ctx, "shop", owner); len(got) != 0 {
				t.Errorf("after removing the solution, %q's secrets: %+v", owner, got)
			}
		}
	})
}
