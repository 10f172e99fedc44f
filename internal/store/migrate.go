package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// A migration is one step of the schema. Steps are applied in order, each
// once, each in a transaction of its own together with its row in
// schema_version, so a failed step leaves the database as it was before
// it. Steps are never edited once released: a change is a new step.
type migration struct {
	name string
	up   func(ctx context.Context, tx *sql.Tx, d dialect) error
}

// migrations[i] makes version i+1.
var migrations = []migration{
	{"base", statements(baseSchema...)},
	{"roles", roles},
	{"inquiries", statements(inquirySchema...)},
	{"usage", statements(usageSchema...)},
	{"generations", statements(generationSchema...)},
	{"signin", statements(signinSchema...)},
	{"thumbnails", thumbnails},
	{"secrets", secrets},
	{"registry logins", registryLogins},
}

// baseSchema is the schema from before versions were recorded. Its
// CREATE … IF NOT EXISTS finds the tables already there in a database of
// that time, which thus enters versioning as version 1 untouched.
var baseSchema = []string{
	`CREATE TABLE IF NOT EXISTS solutions (
	name         TEXT PRIMARY KEY,
	manifest     TEXT NOT NULL,
	images       TEXT NOT NULL DEFAULT '{}',
	generation   BIGINT NOT NULL DEFAULT 0,
	state        TEXT NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	skip_checks  BOOLEAN NOT NULL DEFAULT FALSE,
	check_report TEXT NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS tokens (
	hash       TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
)`,
}

// roles adds providers, roles on tokens, owners of solutions, sessions and
// one-time codes. The tokens of before all were admins': they stay, as
// admin tokens under the names they had.
func roles(ctx context.Context, tx *sql.Tx, d dialect) error {
	err := statements(
		`CREATE TABLE providers (
	name         TEXT PRIMARY KEY,
	display_name TEXT NOT NULL DEFAULT '',
	email        TEXT NOT NULL DEFAULT '',
	webhook      TEXT NOT NULL DEFAULT '',
	created_at   BIGINT NOT NULL
)`,
		// NULL is the platform's: a foreign key can't point at ''.
		`ALTER TABLE solutions ADD COLUMN owner TEXT REFERENCES providers(name)`,
		`CREATE INDEX solutions_owner ON solutions(owner)`,
		`ALTER TABLE tokens RENAME TO tokens_v1`,
		`CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	hash         TEXT NOT NULL UNIQUE,
	name         TEXT NOT NULL,
	role         TEXT NOT NULL CHECK (role IN ('admin', 'provider', 'visitor')),
	provider     TEXT REFERENCES providers(name) ON DELETE CASCADE,
	email        TEXT NOT NULL DEFAULT '',
	group_names  TEXT NOT NULL DEFAULT '[]',
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL DEFAULT 0,
	last_used_at BIGINT NOT NULL DEFAULT 0,
	revoked_at   BIGINT NOT NULL DEFAULT 0,
	CHECK ((role = 'provider') = (provider IS NOT NULL))
)`,
		`CREATE INDEX tokens_provider ON tokens(provider)`,
		// solution is no foreign key: on Kubernetes the solutions live in
		// the cluster, not here. parent is: signing out of the apex ends
		// the per-solution sessions made from it.
		`CREATE TABLE sessions (
	id_hash     TEXT PRIMARY KEY,
	subject     TEXT NOT NULL,
	email       TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL DEFAULT '',
	group_names TEXT NOT NULL DEFAULT '[]',
	role        TEXT NOT NULL CHECK (role IN ('admin', 'provider', 'visitor')),
	provider    TEXT REFERENCES providers(name) ON DELETE CASCADE,
	solution    TEXT,
	parent      TEXT REFERENCES sessions(id_hash) ON DELETE CASCADE,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	CHECK ((role = 'provider') = (provider IS NOT NULL)),
	CHECK ((solution IS NULL) = (parent IS NULL))
)`,
		`CREATE INDEX sessions_parent ON sessions(parent)`,
		`CREATE INDEX sessions_solution ON sessions(solution)`,
		`CREATE INDEX sessions_expires ON sessions(expires_at)`,
		`CREATE TABLE codes (
	hash       TEXT PRIMARY KEY,
	session    TEXT NOT NULL REFERENCES sessions(id_hash) ON DELETE CASCADE,
	solution   TEXT NOT NULL,
	expires_at BIGINT NOT NULL
)`,
		`CREATE INDEX codes_session ON codes(session)`,
		`CREATE INDEX codes_expires ON codes(expires_at)`,
	)(ctx, tx, d)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT hash, name, created_at FROM tokens_v1`)
	if err != nil {
		return err
	}
	type old struct {
		hash, name string
		created    int64
	}
	var olds []old
	for rows.Next() {
		var o old
		if err := rows.Scan(&o.hash, &o.name, &o.created); err != nil {
			rows.Close()
			return err
		}
		olds = append(olds, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, o := range olds {
		id, err := tokenID()
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, d.rebind(`INSERT INTO tokens (id, hash, name, role, created_at) VALUES (?, ?, ?, 'admin', ?)`),
			id, o.hash, o.name, o.created); err != nil {
			return fmt.Errorf("carrying token %q over: %w", o.name, err)
		}
	}
	_, err = tx.ExecContext(ctx, `DROP TABLE tokens_v1`)
	return err
}

// signinSchema adds what signing people in needs beyond roles: whether
// the OpenID provider vouched for a session's address (admitting by
// e-mail domain needs it), and the platform's own keys (key.go).
var signinSchema = []string{
	`ALTER TABLE sessions ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE`,
	`CREATE TABLE keys (
	name       TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	created_at BIGINT NOT NULL
)`,
}

func statements(stmts ...string) func(context.Context, *sql.Tx, dialect) error {
	return func(ctx context.Context, tx *sql.Tx, _ dialect) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%.60s…: %w", s, err)
			}
		}
		return nil
	}
}

// ErrSchemaNewer is returned by Open for a database that a newer aim has
// migrated past what this one knows.
var ErrSchemaNewer = errors.New("the database's schema is newer than this aim")

func (s *Store) migrate(ctx context.Context) error {
	for i, m := range migrations {
		if err := s.step(ctx, i+1, m); err != nil {
			return fmt.Errorf("schema version %d (%s): %w", i+1, m.name, err)
		}
	}
	return nil
}

// step applies migration m as version v unless the database has it. The
// version is read under the lock, so of two processes starting together
// the second finds the first's work done.
func (s *Store) step(ctx context.Context, v int, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.d.lockMigrations(ctx, tx); err != nil {
		return fmt.Errorf("locking: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	version    BIGINT PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`); err != nil {
		return err
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return err
	}
	if have > len(migrations) {
		return fmt.Errorf("%w: it is at version %d, this aim knows up to %d", ErrSchemaNewer, have, len(migrations))
	}
	if have >= v {
		return nil
	}
	if have != v-1 {
		return fmt.Errorf("the database is at version %d, not %d", have, v-1)
	}
	if err := m.up(ctx, tx, s.d); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)`),
		v, m.name, s.now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

// tokenID is a token's public name: 64 random bits in hex, short enough to
// type, and never derived from the secret.
func tokenID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
