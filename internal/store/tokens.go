package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/aimhub/aim/internal/auth"
)

// Role is what a token or a session may do.
type Role string

const (
	// RoleAdmin may do everything.
	RoleAdmin Role = "admin"
	// RoleProvider manages the solutions of its own provider only.
	RoleProvider Role = "provider"
	// RoleVisitor browses and uses the solutions it may see.
	RoleVisitor Role = "visitor"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleProvider || r == RoleVisitor }

// TokenPrefix starts every API token, so that a leaked one is easy to
// recognise in logs and by secret scanners.
const TokenPrefix = "aim_"

// Token is an API token as the store keeps it: everything but the secret.
type Token struct {
	// ID names the token in listings and to revoke it; it is public, and
	// no help in guessing the secret.
	ID   string
	Name string
	Role Role
	// Provider is whose a provider token is; empty for other roles.
	Provider string
	// Email and Groups are whom a visitor's personal access token stands
	// for.
	Email  string
	Groups []string
	// CreatedAt is when it was made. ExpiresAt is when it stops working;
	// zero means never.
	CreatedAt time.Time
	ExpiresAt time.Time
	// LastUsedAt is when it last verified, to the minute; zero means
	// never.
	LastUsedAt time.Time
	// RevokedAt is when it was revoked; zero means it wasn't.
	RevokedAt time.Time
}

// The reasons VerifyToken refuses a token.
var (
	ErrTokenUnknown = errors.New("unknown API token")
	ErrTokenExpired = errors.New("the API token has expired")
	ErrTokenRevoked = errors.New("the API token was revoked")
)

// lastUsedEvery is how stale a token's LastUsedAt may get: a busy client
// costs a write this often, not one per request.
const lastUsedEvery = time.Minute

func (t *Token) validate() error {
	if !t.Role.Valid() {
		return inputErrorf("token %q: role %q: use admin, provider or visitor", t.Name, t.Role)
	}
	if (t.Role == RoleProvider) != (t.Provider != "") {
		return inputErrorf("token %q: a provider token, and only one, names its provider", t.Name)
	}
	if t.Role != RoleVisitor && (t.Email != "" || len(t.Groups) > 0) {
		return inputErrorf("token %q: only a visitor's token carries an email and groups", t.Name)
	}
	return nil
}

// CreateToken makes a new API token from t's name, role, provider, email,
// groups and expiry, and returns its secret, which is shown once and not
// kept (only its SHA-256 is), with the token as stored. A provider token
// needs an existing provider (else an *UnknownProviderError).
func (s *Store) CreateToken(ctx context.Context, t Token) (string, *Token, error) {
	if err := t.validate(); err != nil {
		return "", nil, err
	}
	sec, err := secret()
	if err != nil {
		return "", nil, err
	}
	sec = TokenPrefix + sec
	if t.ID, err = tokenID(); err != nil {
		return "", nil, err
	}
	t.CreatedAt = fromMillis(millis(s.now()))
	t.ExpiresAt = fromMillis(millis(t.ExpiresAt))
	t.LastUsedAt, t.RevokedAt = time.Time{}, time.Time{}
	_, err = s.exec(ctx, `
INSERT INTO tokens (id, hash, name, role, provider, email, group_names, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, hashSecret(sec), t.Name, string(t.Role), nullable(t.Provider), t.Email, encodeList(t.Groups),
		millis(t.CreatedAt), millis(t.ExpiresAt))
	if s.d.foreignKey(err) {
		return "", nil, fmt.Errorf("saving token %q: %w", t.Name, &UnknownProviderError{Name: t.Provider})
	}
	if err != nil {
		return "", nil, fmt.Errorf("saving token %q: %w", t.Name, err)
	}
	return sec, &t, nil
}

const tokenColumns = `id, name, role, COALESCE(provider, ''), email, group_names, created_at, expires_at, last_used_at, revoked_at`

func scanToken(r scanner) (*Token, error) {
	var (
		t                               Token
		groups                          string
		created, expires, used, revoked int64
	)
	if err := r.Scan(&t.ID, &t.Name, &t.Role, &t.Provider, &t.Email, &groups, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	var err error
	if t.Groups, err = decodeList(groups); err != nil {
		return nil, fmt.Errorf("decoding the groups of token %s: %w", t.ID, err)
	}
	t.CreatedAt, t.ExpiresAt = fromMillis(created), fromMillis(expires)
	t.LastUsedAt, t.RevokedAt = fromMillis(used), fromMillis(revoked)
	return &t, nil
}

// VerifyToken returns the token whose secret sec is, or ErrTokenUnknown,
// ErrTokenRevoked or ErrTokenExpired, and notes that it was used.
func (s *Store) VerifyToken(ctx context.Context, sec string) (*Token, error) {
	// A lookup by hash needs no constant-time comparison: see hashSecret.
	t, err := scanToken(s.queryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash=?`, hashSecret(sec)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrTokenUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("checking a token: %w", err)
	}
	now := s.now()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, fmt.Errorf("token %s: %w", t.ID, ErrTokenRevoked)
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return nil, fmt.Errorf("token %s: %w", t.ID, ErrTokenExpired)
	}
	if s.dueUse(t, now) {
		if _, err := s.exec(ctx, `UPDATE tokens SET last_used_at=? WHERE id=? AND last_used_at<?`,
			millis(now), t.ID, millis(now)); err != nil {
			return nil, fmt.Errorf("noting the use of token %s: %w", t.ID, err)
		}
		t.LastUsedAt = fromMillis(millis(now))
	}
	return t, nil
}

// dueUse reports whether t's use at now is worth a write, and if so notes
// it as written. Another aim process on the same database writes too, so
// the stored LastUsedAt counts as well as this process's note.
func (s *Store) dueUse(t *Token, now time.Time) bool {
	if now.Sub(t.LastUsedAt) < lastUsedEvery {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.lastUsed[t.ID]; ok && now.Sub(last) < lastUsedEvery {
		return false
	}
	if len(s.lastUsed) >= 4096 {
		// Notes older than a minute decide nothing any more.
		for id, last := range s.lastUsed {
			if now.Sub(last) >= lastUsedEvery {
				delete(s.lastUsed, id)
			}
		}
	}
	s.lastUsed[t.ID] = now
	return true
}

// ListTokens returns the tokens of one provider, or every token for an
// empty provider, revoked and expired ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context, provider string) ([]Token, error) {
	q, args := `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`, []any{}
	if provider != "" {
		q, args = `SELECT `+tokenColumns+` FROM tokens WHERE provider=? ORDER BY created_at, id`, []any{provider}
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("listing tokens: %w", err)
		}
		out = append(out, *t)
	}
	return out, rows.Err()
}

// RevokeToken stops a token from working from now on. Revoking it again
// keeps the first time.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN ? ELSE revoked_at END WHERE id=?`,
		millis(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoking token %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return nil
}

// HasTokens reports whether any token exists, revoked or not: the first
// start makes an admin token only into an empty table.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	if err := s.queryRow(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return false, fmt.Errorf("counting tokens: %w", err)
	}
	return n > 0, nil
}

// Identity is whom the token stands for: an admin; a provider,
// for its provider; a visitor, for the person its address and groups
// name. The address of a visitor's token counts as verified: an admin
// issued the token to that person.
func (t *Token) Identity() auth.Identity {
	id := auth.Identity{Role: auth.Role(t.Role), TokenID: t.ID}
	switch t.Role {
	case RoleProvider:
		id.Provider = t.Provider
	case RoleVisitor:
		id.Email, id.EmailVerified = t.Email, t.Email != ""
		id.Groups = t.Groups
	}
	return id
}
