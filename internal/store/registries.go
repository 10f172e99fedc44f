package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// registryLogins keeps providers' logins to container registries, the
// password sealed by the caller (internal/seal) before it gets here. A
// login is its owner's only: it is used to pull the images of that
// owner's solutions, never another's. A logout, or its owner's removal,
// leaves the row without credentials: the host stays known as private
// (PrivateHosts), so that images the engine pulled with the login are
// never served from its cache to someone without one.
func registryLogins(ctx context.Context, tx *sql.Tx, d dialect) error {
	return statements(`CREATE TABLE registry_logins (
	owner    TEXT NOT NULL DEFAULT '',
	host     TEXT NOT NULL,
	username TEXT NOT NULL,
	sealed   `+d.bytesType()+` NOT NULL,
	set_at   BIGINT NOT NULL,
	PRIMARY KEY (owner, host)
)`)(ctx, tx, d)
}

// RegistryLogin is one owner's login to one registry.
type RegistryLogin struct {
	// Owner is the provider that gave it; empty for the admins.
	Owner    string
	Host     string
	Username string
	// Sealed is the password as internal/seal sealed it.
	Sealed []byte
	SetAt  time.Time
}

// PutRegistryLogin keeps l in place of owner's login to its host before;
// it sets l.SetAt.
func (s *Store) PutRegistryLogin(ctx context.Context, l *RegistryLogin) error {
	l.SetAt = s.now()
	_, err := s.exec(ctx, `INSERT INTO registry_logins (owner, host, username, sealed, set_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (owner, host) DO UPDATE SET username = excluded.username, sealed = excluded.sealed, set_at = excluded.set_at`,
		l.Owner, l.Host, l.Username, l.Sealed, millis(l.SetAt))
	if err != nil {
		return fmt.Errorf("keeping the login to %s: %w", l.Host, err)
	}
	return nil
}

// ListRegistryLogins returns owner's logins, by host.
func (s *Store) ListRegistryLogins(ctx context.Context, owner string) ([]RegistryLogin, error) {
	rows, err := s.query(ctx, `SELECT host, username, sealed, set_at FROM registry_logins WHERE owner = ? AND username <> '' ORDER BY host`, owner)
	if err != nil {
		return nil, fmt.Errorf("listing registry logins: %w", err)
	}
	defer rows.Close()
	var out []RegistryLogin
	for rows.Next() {
		l := RegistryLogin{Owner: owner}
		var at int64
		if err := rows.Scan(&l.Host, &l.Username, &l.Sealed, &at); err != nil {
			return nil, fmt.Errorf("listing registry logins: %w", err)
		}
		l.SetAt = fromMillis(at)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing registry logins: %w", err)
	}
	return out, nil
}

// PrivateHosts returns the hosts that anyone has, or had, a login to:
// registries known to be private, whose images aim pulls afresh for each deploy so
// that the registry, not the engine's cache, decides who gets them.
func (s *Store) PrivateHosts(ctx context.Context) (map[string]bool, error) {
	rows, err := s.query(ctx, `SELECT DISTINCT host FROM registry_logins`)
	if err != nil {
		return nil, fmt.Errorf("listing registry hosts: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("listing registry hosts: %w", err)
		}
		out[h] = true
	}
	return out, rows.Err()
}

// DeleteRegistryLogin removes owner's login to host, or returns
// ErrNotFound; the host stays among PrivateHosts.
func (s *Store) DeleteRegistryLogin(ctx context.Context, owner, host string) error {
	res, err := s.exec(ctx, `UPDATE registry_logins SET username = '', sealed = ? WHERE owner = ? AND host = ? AND username <> ''`, []byte{}, owner, host)
	if err != nil {
		return fmt.Errorf("removing the login to %s: %w", host, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("login to %s: %w", host, ErrNotFound)
	}
	return nil
}
