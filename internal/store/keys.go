package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
)

// keyBytes is the size of every key Key makes: 256 bits, as HMAC-SHA256
// wants.
const keyBytes = 32

// Key returns the platform's secret key called name, making it on first
// use. Every aim process on the same database gets the same key, so that
// what one API replica signs another can check (the sign-in's login
// cookie, say): of two processes making a key at once, the first insert
// wins and both read it back.
func (s *Store) Key(ctx context.Context, name string) ([]byte, error) {
	if name == "" {
		return nil, inputErrorf("a key needs a name")
	}
	k, err := s.readKey(ctx, name)
	if !errors.Is(err, ErrNotFound) {
		return k, err
	}
	fresh := make([]byte, keyBytes)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO keys (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		name, base64.StdEncoding.EncodeToString(fresh), millis(s.now())); err != nil {
		return nil, fmt.Errorf("making key %s: %w", name, err)
	}
	return s.readKey(ctx, name)
}

func (s *Store) readKey(ctx context.Context, name string) ([]byte, error) {
	var v string
	err := s.queryRow(ctx, `SELECT value FROM keys WHERE name=?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("key %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", name, err)
	}
	k, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("decoding key %s: %w", name, err)
	}
	return k, nil
}
