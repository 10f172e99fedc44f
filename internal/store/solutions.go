package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// Solution is what aim remembers of one solution.
type Solution struct {
	Name     string
	Manifest *spec.Manifest
	// Owner is the provider the solution belongs to; empty means the
	// platform's admins.
	Owner string
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

// UnknownProviderError is returned for a solution, token or session that
// names a provider that doesn't exist.
type UnknownProviderError struct{ Name string }

func (e *UnknownProviderError) Error() string {
	return fmt.Sprintf("provider %q does not exist", e.Name)
}

// Put creates or replaces a solution, owner included: a caller that
// replaces a solution carries its Owner over, as it does CreatedAt.
func (s *Store) Put(ctx context.Context, sol *Solution) error {
	man, err := json.Marshal(sol.Manifest)
	if err != nil {
		return fmt.Errorf("encoding manifest of %s: %w", sol.Name, err)
	}
	imgs, err := json.Marshal(sol.Images)
	if err != nil {
		return fmt.Errorf("encoding images of %s: %w", sol.Name, err)
	}
	now := s.now()
	if sol.CreatedAt.IsZero() {
		sol.CreatedAt = now
	}
	sol.UpdatedAt = now
	_, err = s.exec(ctx, `
INSERT INTO solutions (name, manifest, owner, images, generation, state, last_error, skip_checks, check_report, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(name) DO UPDATE SET manifest=excluded.manifest, owner=excluded.owner, images=excluded.images,
	generation=excluded.generation, state=excluded.state, last_error=excluded.last_error,
	skip_checks=excluded.skip_checks, check_report=excluded.check_report, updated_at=excluded.updated_at`,
		sol.Name, string(man), nullable(sol.Owner), string(imgs), sol.Generation, sol.State, sol.LastError, sol.SkipChecks,
		string(sol.Check), millis(sol.CreatedAt), millis(sol.UpdatedAt))
	if s.d.foreignKey(err) {
		return fmt.Errorf("saving %s: %w", sol.Name, &UnknownProviderError{Name: sol.Owner})
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", sol.Name, err)
	}
	return nil
}

// SetState records a solution's state and last error.
func (s *Store) SetState(ctx context.Context, name, state, lastError string) error {
	res, err := s.exec(ctx, `UPDATE solutions SET state=?, last_error=?, updated_at=? WHERE name=?`,
		state, lastError, millis(s.now()), name)
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
	sol, err := scanSolution(s.queryRow(ctx, `SELECT `+solutionColumns+` FROM solutions WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("solution %s: %w", name, ErrNotFound)
	}
	return sol, err
}

// List returns every solution, by name.
func (s *Store) List(ctx context.Context) ([]*Solution, error) {
	return s.listSolutions(ctx, `SELECT `+solutionColumns+` FROM solutions ORDER BY name`)
}

// ListByOwner returns the solutions of one provider, by name; an empty
// owner lists the platform's own.
func (s *Store) ListByOwner(ctx context.Context, owner string) ([]*Solution, error) {
	if owner == "" {
		return s.listSolutions(ctx, `SELECT `+solutionColumns+` FROM solutions WHERE owner IS NULL ORDER BY name`)
	}
	return s.listSolutions(ctx, `SELECT `+solutionColumns+` FROM solutions WHERE owner=? ORDER BY name`, owner)
}

func (s *Store) listSolutions(ctx context.Context, query string, args ...any) ([]*Solution, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("listing solutions: %w", err)
	}
	defer rows.Close()
	var out []*Solution
	for rows.Next() {
		sol, err := scanSolution(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sol)
	}
	return out, rows.Err()
}

// Delete removes a solution, and with it the per-solution sessions and
// one-time codes made for it: a solution made anew under the name, maybe
// by someone else, starts with nobody signed in.
func (s *Store) Delete(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM codes WHERE solution=?`,
		`DELETE FROM sessions WHERE solution=?`,
		`DELETE FROM generations WHERE solution=?`,
		`DELETE FROM thumbnails WHERE solution=?`,
		`DELETE FROM secrets WHERE solution=?`,
		`DELETE FROM solutions WHERE name=?`,
	} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), name); err != nil {
			return fmt.Errorf("deleting %s: %w", name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// NextGeneration returns a number never returned before, so that
// generations stay unique even across a removed and re-created solution.
func (s *Store) NextGeneration(ctx context.Context) (int64, error) {
	var n int64
	err := s.queryRow(ctx, `INSERT INTO counters (name, value) VALUES ('generation', 1)
ON CONFLICT(name) DO UPDATE SET value = counters.value + 1 RETURNING value`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("allocating a generation: %w", err)
	}
	return n, nil
}

const solutionColumns = `name, manifest, COALESCE(owner, ''), images, generation, state, last_error, skip_checks, check_report, created_at, updated_at`

func scanSolution(r scanner) (*Solution, error) {
	var (
		sol                  Solution
		man, imgs, check     string
		createdAt, updatedAt int64
	)
	if err := r.Scan(&sol.Name, &man, &sol.Owner, &imgs, &sol.Generation, &sol.State, &sol.LastError, &sol.SkipChecks, &check, &createdAt, &updatedAt); err != nil {
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
	sol.CreatedAt = fromMillis(createdAt)
	sol.UpdatedAt = fromMillis(updatedAt)
	return &sol, nil
}
