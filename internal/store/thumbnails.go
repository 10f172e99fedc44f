package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// thumbnails keeps the one picture per solution the catalog shows, as
// checked at its deploy (spec.CheckThumbnail). solution is no foreign
// key: on Kubernetes the solutions live in the cluster, not here.
func thumbnails(ctx context.Context, tx *sql.Tx, d dialect) error {
	return statements(`CREATE TABLE thumbnails (
	solution     TEXT PRIMARY KEY,
	content_type TEXT NOT NULL,
	data         `+d.bytesType()+` NOT NULL,
	etag         TEXT NOT NULL,
	updated_at   BIGINT NOT NULL
)`)(ctx, tx, d)
}

// Thumbnail is a solution's picture.
type Thumbnail struct {
	ContentType string
	Data        []byte
	// ETag is a strong validator of Data: its SHA-256, quoted.
	ETag      string
	UpdatedAt time.Time
}

// PutThumbnail keeps data (of the checked contentType) as solution's
// thumbnail, in place of any before.
func (s *Store) PutThumbnail(ctx context.Context, solution, contentType string, data []byte) error {
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	_, err := s.exec(ctx, `INSERT INTO thumbnails (solution, content_type, data, etag, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (solution) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, etag = excluded.etag, updated_at = excluded.updated_at`,
		solution, contentType, data, etag, millis(s.now()))
	if err != nil {
		return fmt.Errorf("keeping the thumbnail of %s: %w", solution, err)
	}
	return nil
}

// GetThumbnail returns solution's thumbnail, or ErrNotFound.
func (s *Store) GetThumbnail(ctx context.Context, solution string) (*Thumbnail, error) {
	var t Thumbnail
	var at int64
	err := s.queryRow(ctx, `SELECT content_type, data, etag, updated_at FROM thumbnails WHERE solution = ?`, solution).
		Scan(&t.ContentType, &t.Data, &t.ETag, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thumbnail of %s: %w", solution, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the thumbnail of %s: %w", solution, err)
	}
	t.UpdatedAt = fromMillis(at)
	return &t, nil
}

// DeleteThumbnail removes solution's thumbnail, if it has one.
func (s *Store) DeleteThumbnail(ctx context.Context, solution string) error {
	if _, err := s.exec(ctx, `DELETE FROM thumbnails WHERE solution = ?`, solution); err != nil {
		return fmt.Errorf("removing the thumbnail of %s: %w", solution, err)
	}
	return nil
}
