// Package store keeps aim's state in an embedded SQLite file: the
// solutions with their manifests, and the API tokens. It uses a pure-Go
// driver, so aim builds without cgo.
package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/aimhub/aim/internal/spec"
)

// ErrNotFound is returned for a solution or token that doesn't exist.
var ErrNotFound = errors.New("not found")

// Solution is what aim remembers of one solution.
type Solution struct {
	Name     string
	Manifest *spec.Manifest
	// Images maps each component to the image its current generation runs.
	Images map[string]string
	// Generation of the containers that serve; 0 before the first deploy
	// answered.
	Generation int64
	// State is the last state the controller recorded (see controller).
	State string
	// LastError says why the solution is failed, or what went wrong last.
	LastError string
	// SkipChecks records that the deploy skipped the conformance checks.
	SkipChecks bool
	// Check holds the last conformance report as JSON, if any.
	Check     json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store is the SQLite database.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string) (*Store, error) {
	// WAL lets readers go on while a deploy writes; busy_timeout makes a
	// second aim process wait rather than fail.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// SQLite allows one writer; one connection keeps writes ordered.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

const schema = `
CREATE TABLE IF NOT EXISTS solutions (
	name        TEXT PRIMARY KEY,
	manifest    TEXT NOT NULL,
	images      TEXT NOT NULL DEFAULT '{}',
	generation  INTEGER NOT NULL DEFAULT 0,
	state       TEXT NOT NULL,
	last_error  TEXT NOT NULL DEFAULT '',
	skip_checks INTEGER NOT NULL DEFAULT 0,
	check_report TEXT NOT NULL DEFAULT '',
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
	hash       TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
);
`

func (s *Store) migrate(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, schema)
	return err
}

// Put creates or replaces a solution.
func (s *Store) Put(ctx context.Context, sol *Solution) error {
	man, err := json.Marshal(sol.Manifest)
	if err != nil {
		return fmt.Errorf("encoding manifest of %s: %w", sol.Name, err)
	}
	imgs, err := json.Marshal(sol.Images)
	if err != nil {
		return fmt.Errorf("encoding images of %s: %w", sol.Name, err)
	}
	now := time.Now()
	if sol.CreatedAt.IsZero() {
		sol.CreatedAt = now
	}
	sol.UpdatedAt = now
	_, err = s.db.ExecContext(ctx, `
INSERT INTO solutions (name, manifest, images, generation, state, last_error, skip_checks, check_report, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(name) DO UPDATE SET manifest=excluded.manifest, images=excluded.images, generation=excluded.generation,
	state=excluded.state, last_error=excluded.last_error, skip_checks=excluded.skip_checks,
	check_report=excluded.check_report, updated_at=excluded.updated_at`,
		sol.Name, string(man), string(imgs), sol.Generation, sol.State, sol.LastError, sol.SkipChecks,
		string(sol.Check), sol.CreatedAt.UnixMilli(), sol.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("saving %s: %w", sol.Name, err)
	}
	return nil
}

// SetState records a solution's state and last error.
func (s *Store) SetState(ctx context.Context, name, state, lastError string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE solutions SET state=?, last_error=?, updated_at=? WHERE name=?`,
		state, lastError, time.Now().UnixMilli(), name)
	if err != nil {
		return fmt.Errorf("saving state of %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	return nil
}

// Get returns one solution.
func (s *Store) Get(ctx context.Context, name string) (*Solution, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+columns+` FROM solutions WHERE name=?`, name)
	sol, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	return sol, err
}

// List returns every solution, by name.
func (s *Store) List(ctx context.Context) ([]*Solution, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+columns+` FROM solutions ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing solutions: %w", err)
	}
	defer rows.Close()
	var out []*Solution
	for rows.Next() {
		sol, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sol)
	}
	return out, rows.Err()
}

// Delete removes a solution.
func (s *Store) Delete(ctx context.Context, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM solutions WHERE name=?`, name); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// NextGeneration returns a number never returned before, so that
// generations stay unique even across a removed and re-created solution.
func (s *Store) NextGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO counters (name, value) VALUES ('generation', 1)
ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("allocating a generation: %w", err)
	}
	return n, nil
}

const columns = `name, manifest, images, generation, state, last_error, skip_checks, check_report, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scan(r scanner) (*Solution, error) {
	var (
		sol                  Solution
		man, imgs, check     string
		createdAt, updatedAt int64
	)
	if err := r.Scan(&sol.Name, &man, &imgs, &sol.Generation, &sol.State, &sol.LastError, &sol.SkipChecks, &check, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	sol.Manifest = new(spec.Manifest)
	if err := json.Unmarshal([]byte(man), sol.Manifest); err != nil {
		return nil, fmt.Errorf("decoding manifest of %s: %w", sol.Name, err)
	}
	if err := json.Unmarshal([]byte(imgs), &sol.Images); err != nil {
		return nil, fmt.Errorf("decoding images of %s: %w", sol.Name, err)
	}
	if check != "" {
		sol.Check = json.RawMessage(check)
	}
	sol.CreatedAt = time.UnixMilli(createdAt)
	sol.UpdatedAt = time.UnixMilli(updatedAt)
	return &sol, nil
}

// TokenPrefix starts every API token, so that a leaked one is easy to
// recognise in logs and by secret scanners.
const TokenPrefix = "aim_"

// CreateToken makes a new API token and returns it; only its hash is kept.
func (s *Store) CreateToken(ctx context.Context, name string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO tokens (hash, name, created_at) VALUES (?, ?, ?)`,
		hashToken(tok), name, time.Now().UnixMilli()); err != nil {
		return "", fmt.Errorf("saving token: %w", err)
	}
	return tok, nil
}

// HasTokens reports whether any token exists.
func (s *Store) HasTokens(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM tokens`).Scan(&n); err != nil {
		return false, fmt.Errorf("counting tokens: %w", err)
	}
	return n > 0, nil
}

// VerifyToken returns the token's name, or ErrNotFound.
func (s *Store) VerifyToken(ctx context.Context, tok string) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, `SELECT name FROM tokens WHERE hash=?`, hashToken(tok)).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("checking token: %w", err)
	}
	return name, nil
}

// hashToken is SHA-256: tokens carry 256 random bits, so a slow hash adds
// nothing and a lookup by hash leaks no timing about the token.
func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
