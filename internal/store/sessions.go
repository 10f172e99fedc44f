package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Session is a person signed in by OpenID Connect.
type Session struct {
	// ID is the SHA-256, in hex, of the session's secret: what the store
	// knows it by. The secret itself (the cookie) is returned by
	// CreateSession only, and is not kept. CreateSession ignores ID.
	ID string
	// Subject is the OpenID provider's "sub" for the person; Email,
	// EmailVerified, Name and Groups are its claims as of signing in.
	Subject       string
	Email         string
	EmailVerified bool
	Name          string
	Groups        []string
	Role          Role
	// Provider is whose people a provider's session belongs to; empty for
	// other roles.
	Provider string
	// Solution is empty for a session on the platform's own pages, else
	// the one solution on whose host the session is valid.
	Solution string
	// Parent is, for a per-solution session, the ID of the platform
	// session it came from: ending that one ends this one too.
	Parent    string
	CreatedAt time.Time
	// ExpiresAt is required. A per-solution session ends no later than
	// its parent.
	ExpiresAt time.Time
}

func (se *Session) validate() error {
	switch {
	case se.Subject == "":
		return inputErrorf("a session needs the person's subject")
	case !se.Role.Valid():
		return inputErrorf("session of %s: role %q: use admin, provider or visitor", se.Subject, se.Role)
	case (se.Role == RoleProvider) != (se.Provider != ""):
		return inputErrorf("session of %s: a provider's session, and only one, names its provider", se.Subject)
	case (se.Solution == "") != (se.Parent == ""):
		return inputErrorf("session of %s: a per-solution session, and only one, names its solution and parent", se.Subject)
	case se.ExpiresAt.IsZero():
		return inputErrorf("session of %s: a session needs an expiry", se.Subject)
	}
	return nil
}

// CreateSession keeps a new session and returns its secret, for the
// cookie. A per-solution session's parent must exist and not have
// expired (else ErrNotFound), and caps the child's expiry.
func (s *Store) CreateSession(ctx context.Context, se Session) (string, error) {
	if err := se.validate(); err != nil {
		return "", err
	}
	now := s.now()
	if se.Parent != "" {
		parent, err := s.sessionByID(ctx, se.Parent, now)
		if err != nil {
			return "", err
		}
		if parent.Solution != "" {
			return "", inputErrorf("session of %s: a per-solution session comes from a platform session, not from another one", se.Subject)
		}
		if parent.ExpiresAt.Before(se.ExpiresAt) {
			se.ExpiresAt = parent.ExpiresAt
		}
	}
	sec, err := secret()
	if err != nil {
		return "", err
	}
	_, err = s.exec(ctx, `
INSERT INTO sessions (id_hash, subject, email, email_verified, name, group_names, role, provider, solution, parent, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		hashSecret(sec), se.Subject, se.Email, se.EmailVerified, se.Name, encodeList(se.Groups), string(se.Role),
		nullable(se.Provider), nullable(se.Solution), nullable(se.Parent), millis(now), millis(se.ExpiresAt))
	if s.d.foreignKey(err) {
		// Either the parent ended since it was read, or the provider
		// was deleted.
		if se.Provider != "" {
			if _, perr := s.GetProvider(ctx, se.Provider); errors.Is(perr, ErrNotFound) {
				return "", fmt.Errorf("saving the session of %s: %w", se.Subject, &UnknownProviderError{Name: se.Provider})
			}
		}
		return "", fmt.Errorf("the parent session: %w", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("saving the session of %s: %w", se.Subject, err)
	}
	return sec, nil
}

const sessionColumns = `id_hash, subject, email, email_verified, name, group_names, role, COALESCE(provider, ''), COALESCE(solution, ''), COALESCE(parent, ''), created_at, expires_at`

func scanSession(r scanner) (*Session, error) {
	var (
		se               Session
		groups           string
		created, expires int64
	)
	if err := r.Scan(&se.ID, &se.Subject, &se.Email, &se.EmailVerified, &se.Name, &groups, &se.Role, &se.Provider, &se.Solution, &se.Parent, &created, &expires); err != nil {
		return nil, err
	}
	var err error
	if se.Groups, err = decodeList(groups); err != nil {
		return nil, fmt.Errorf("decoding the groups of a session: %w", err)
	}
	se.CreatedAt, se.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &se, nil
}

// GetSession returns the session whose secret sec is; an expired one is
// ErrNotFound.
func (s *Store) GetSession(ctx context.Context, sec string) (*Session, error) {
	return s.sessionByID(ctx, hashSecret(sec), s.now())
}

func (s *Store) sessionByID(ctx context.Context, id string, now time.Time) (*Session, error) {
	se, err := scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash=? AND expires_at>?`, id, millis(now)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading a session: %w", err)
	}
	return se, nil
}

// DeleteSession ends the session whose secret sec is, with the
// per-solution sessions made from it. Ending one that doesn't exist is no
// error: signing out twice is signed out.
func (s *Store) DeleteSession(ctx context.Context, sec string) error {
	// The parent foreign key cascades to the children, and to the codes.
	if _, err := s.exec(ctx, `DELETE FROM sessions WHERE id_hash=?`, hashSecret(sec)); err != nil {
		return fmt.Errorf("ending a session: %w", err)
	}
	return nil
}

// DeleteExpired removes the sessions and one-time codes that have expired,
// and returns how many it removed.
func (s *Store) DeleteExpired(ctx context.Context) (int, error) {
	now := millis(s.now())
	total := 0
	// Nothing outlives what it came from (CreateSession and CreateCode cap
	// the expiry), so, removed children first, every row is counted here
	// rather than some gone unseen through a cascade.
	for _, q := range []string{
		`DELETE FROM codes WHERE expires_at<=?`,
		`DELETE FROM sessions WHERE expires_at<=? AND parent IS NOT NULL`,
		`DELETE FROM sessions WHERE expires_at<=?`,
	} {
		res, err := s.exec(ctx, q, now)
		if err != nil {
			return total, fmt.Errorf("removing what expired: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}
