package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestThumbnails(t *testing.T) {
	each(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.GetThumbnail(ctx, "shop"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("no thumbnail yet: %v", err)
		}
		// Every byte value survives, NUL and invalid UTF-8 included.
		png := append([]byte("\x89PNG\r\n\x1a\n\x00\xff\xfe"), bytes.Repeat([]byte{0, 1, 2, 255}, 1000)...)
		if err := s.PutThumbnail(ctx, "shop", "image/png", png); err != nil {
			t.Fatal(err)
		}
		th, err := s.GetThumbnail(ctx, "shop")
		if err != nil || th.ContentType != "image/png" || !bytes.Equal(th.Data, png) || th.ETag == "" || th.UpdatedAt.IsZero() {
			t.Fatalf("%+v %v", th, err)
		}
		if err := s.PutThumbnail(ctx, "shop", "image/webp", []byte("RIFF....WEBPVP8 ")); err != nil {
			t.Fatal(err)
		}
		th2, _ := s.GetThumbnail(ctx, "shop")
		if th2.ContentType != "image/webp" || th2.ETag == th.ETag {
			t.Errorf("replaced: %+v", th2)
		}
		if err := s.DeleteThumbnail(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetThumbnail(ctx, "shop"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after delete: %v", err)
		}
		// Removing the solution removes its thumbnail.
		if err := s.PutThumbnail(ctx, "shop", "image/png", png); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetThumbnail(ctx, "shop"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after removing the solution: %v", err)
		}
	})
}
