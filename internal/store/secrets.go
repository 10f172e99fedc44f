package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// secrets keeps solutions' secrets, sealed by the caller (internal/seal)
// before they get here: the store never holds a value in clear. A secret
// belongs to the owner who set it as well as to the solution's name, so
// that one set for a name no one has deployed yet never reaches another
// provider who claims that name. solution is no foreign key: a secret
// may be set before the first deploy.
func secrets(ctx context.Context, tx *sql.Tx, d dialect) error {
	return statements(`CREATE TABLE secrets (
	solution TEXT NOT NULL,
	owner    TEXT NOT NULL DEFAULT '',
	name     TEXT NOT NULL,
	sealed   `+d.bytesType()+` NOT NULL,
	set_at   BIGINT NOT NULL,
	PRIMARY KEY (solution, owner, name)
)`)(ctx, tx, d)
}

// Secret is one sealed secret of a solution.
type Secret struct {
	Solution string
	// Owner is the provider that set it; empty for the admins.
	Owner string
	Name  string
	// Sealed is the value as internal/seal sealed it.
	Sealed []byte
	SetAt  time.Time
}

// PutSecret keeps sec, in place of the one of its solution, owner and
// name before; it sets sec.SetAt.
func (s *Store) PutSecret(ctx context.Context, sec *Secret) error {
	sec.SetAt = s.now()
	_, err := s.exec(ctx, `INSERT INTO secrets (solution, owner, name, sealed, set_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (solution, owner, name) DO UPDATE SET sealed = excluded.sealed, set_at = excluded.set_at`,
		sec.Solution, sec.Owner, sec.Name, sec.Sealed, millis(sec.SetAt))
	if err != nil {
		return fmt.Errorf("keeping secret %s of %s: %w", sec.Name, sec.Solution, err)
	}
	return nil
}

// ListSecrets returns the secrets owner set for solution, by name.
func (s *Store) ListSecrets(ctx context.Context, solution, owner string) ([]Secret, error) {
	rows, err := s.query(ctx, `SELECT name, sealed, set_at FROM secrets WHERE solution = ? AND owner = ? ORDER BY name`, solution, owner)
	if err != nil {
		return nil, fmt.Errorf("listing the secrets of %s: %w", solution, err)
	}
	defer rows.Close()
	var out []Secret
	for rows.Next() {
		sec := Secret{Solution: solution, Owner: owner}
		var at int64
		if err := rows.Scan(&sec.Name, &sec.Sealed, &at); err != nil {
			return nil, fmt.Errorf("listing the secrets of %s: %w", solution, err)
		}
		sec.SetAt = fromMillis(at)
		out = append(out, sec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the secrets of %s: %w", solution, err)
	}
	return out, nil
}

// DeleteSecret removes a secret, or returns ErrNotFound.
func (s *Store) DeleteSecret(ctx context.Context, solution, owner, name string) error {
	res, err := s.exec(ctx, `DELETE FROM secrets WHERE solution = ? AND owner = ? AND name = ?`, solution, owner, name)
	if err != nil {
		return fmt.Errorf("removing secret %s of %s: %w", name, solution, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("secret %s of %s: %w", name, solution, ErrNotFound)
	}
	return nil
}
