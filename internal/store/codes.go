package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrCodeInvalid is RedeemCode's refusal: the code is unknown, used,
// expired or made for another solution. Which one is not said, as it
// would help nobody but someone trying codes.
var ErrCodeInvalid = errors.New("the sign-in code is not valid")

// CreateCode makes a one-time code that hands the platform session whose
// secret sessionSecret is to the host of one solution, valid for ttl.
// Only the code's hash is kept.
func (s *Store) CreateCode(ctx context.Context, sessionSecret, solution string, ttl time.Duration) (string, error) {
	if solution == "" || ttl <= 0 {
		return "", inputErrorf("a sign-in code needs a solution and a positive lifetime")
	}
	now := s.now()
	parent, err := s.sessionByID(ctx, hashSecret(sessionSecret), now)
	if err != nil {
		return "", err
	}
	if parent.Solution != "" {
		return "", inputErrorf("a sign-in code comes from a platform session, not from one of solution %s", parent.Solution)
	}
	code, err := secret()
	if err != nil {
		return "", err
	}
	expires := now.Add(ttl)
	if parent.ExpiresAt.Before(expires) {
		expires = parent.ExpiresAt
	}
	_, err = s.exec(ctx, `INSERT INTO codes (hash, session, solution, expires_at) VALUES (?, ?, ?, ?)`,
		hashSecret(code), parent.ID, solution, millis(expires))
	if s.d.foreignKey(err) {
		return "", fmt.Errorf("session: %w", ErrNotFound) // signed out meanwhile
	}
	if err != nil {
		return "", fmt.Errorf("saving a sign-in code: %w", err)
	}
	return code, nil
}

// RedeemCode uses up a code made for solution and returns the platform
// session it came from, for the caller to make the per-solution session
// from (Parent: its ID). A code works once: of concurrent redeems exactly
// one wins, as the code is taken by one DELETE … RETURNING. A code tried
// on the wrong solution's host is used up too, since it leaked there.
func (s *Store) RedeemCode(ctx context.Context, code, solution string) (*Session, error) {
	var (
		session, madeFor string
		expires          int64
	)
	err := s.queryRow(ctx, `DELETE FROM codes WHERE hash=? RETURNING session, solution, expires_at`, hashSecret(code)).
		Scan(&session, &madeFor, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrCodeInvalid
	}
	if err != nil {
		return nil, fmt.Errorf("redeeming a sign-in code: %w", err)
	}
	now := s.now()
	if madeFor != solution || !now.Before(fromMillis(expires)) {
		return nil, ErrCodeInvalid
	}
	se, err := s.sessionByID(ctx, session, now)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrCodeInvalid
	}
	return se, err
}
