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

var generationSchema = []string{
	`CREATE TABLE generations (
	solution    TEXT NOT NULL,
	generation  BIGINT NOT NULL,
	manifest    TEXT NOT NULL,
	images      TEXT NOT NULL DEFAULT '{}',
	digests     TEXT NOT NULL DEFAULT '{}',
	deployed_by TEXT NOT NULL DEFAULT '',
	outcome     TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	rollback_of BIGINT NOT NULL DEFAULT 0,
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	PRIMARY KEY (solution, generation)
)`,
}

// Outcome is what became of a generation.
type Outcome string

// The outcomes.
const (
	OutcomeDeploying Outcome = "deploying"
	OutcomeServing   Outcome = "serving"
	OutcomeReplaced  Outcome = "replaced" // served, then a later one took over
	OutcomeFailed    Outcome = "failed"   // never served
)

// Generation is one deploy of a solution: what it ran and what became of it.
type Generation struct {
	Solution   string
	Generation int64
	Manifest   *spec.Manifest
	// Images maps each component to the image reference it ran; Digests
	// to the image's content digest (the engine's image ID), so that a
	// reference that was re-tagged since is noticed.
	Images, Digests map[string]string
	// DeployedBy says who deployed it: a token's or a person's name.
	DeployedBy string
	Outcome    Outcome
	Reason     string
	// RollbackOf is the generation this one serves again, if it is a
	// rollback.
	RollbackOf           int64
	CreatedAt, UpdatedAt time.Time
}

// PutGeneration records a generation, or updates its record.
func (s *Store) PutGeneration(ctx context.Context, g *Generation) error {
	man, err := json.Marshal(g.Manifest)
	if err != nil {
		return err
	}
	imgs, _ := json.Marshal(orEmpty(g.Images))
	digs, _ := json.Marshal(orEmpty(g.Digests))
	now := s.now()
	if g.CreatedAt.IsZero() {
		g.CreatedAt = now
	}
	g.UpdatedAt = now
	_, err = s.exec(ctx, `INSERT INTO generations (solution, generation, manifest, images, digests, deployed_by, outcome, reason, rollback_of, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (solution, generation) DO UPDATE SET manifest=excluded.manifest, images=excluded.images, digests=excluded.digests,
outcome=excluded.outcome, reason=excluded.reason, updated_at=excluded.updated_at`,
		g.Solution, g.Generation, string(man), string(imgs), string(digs), g.DeployedBy, string(g.Outcome), g.Reason, g.RollbackOf,
		millis(g.CreatedAt), millis(now))
	if err != nil {
		return fmt.Errorf("recording generation %d of %s: %w", g.Generation, g.Solution, err)
	}
	return nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// SetOutcome records what became of a generation.
func (s *Store) SetOutcome(ctx context.Context, solution string, gen int64, o Outcome, reason string) error {
	res, err := s.exec(ctx, `UPDATE generations SET outcome=?, reason=?, updated_at=? WHERE solution=? AND generation=?`,
		string(o), reason, millis(s.now()), solution, gen)
	if err != nil {
		return fmt.Errorf("recording the outcome of generation %d of %s: %w", gen, solution, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

const generationColumns = `solution, generation, manifest, images, digests, deployed_by, outcome, reason, rollback_of, created_at, updated_at`

func scanGeneration(r scanner) (*Generation, error) {
	var (
		g                   Generation
		man, imgs, digs, oc string
		created, updated    int64
	)
	if err := r.Scan(&g.Solution, &g.Generation, &man, &imgs, &digs, &g.DeployedBy, &oc, &g.Reason, &g.RollbackOf, &created, &updated); err != nil {
		return nil, err
	}
	g.Outcome, g.CreatedAt, g.UpdatedAt = Outcome(oc), fromMillis(created), fromMillis(updated)
	g.Manifest = new(spec.Manifest)
	if err := json.Unmarshal([]byte(man), g.Manifest); err != nil {
		return nil, fmt.Errorf("generation %d of %s: manifest: %w", g.Generation, g.Solution, err)
	}
	_ = json.Unmarshal([]byte(imgs), &g.Images)
	_ = json.Unmarshal([]byte(digs), &g.Digests)
	return &g, nil
}

// GetGeneration returns one generation, or ErrNotFound.
func (s *Store) GetGeneration(ctx context.Context, solution string, gen int64) (*Generation, error) {
	g, err := scanGeneration(s.queryRow(ctx, `SELECT `+generationColumns+` FROM generations WHERE solution=? AND generation=?`, solution, gen))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("generation %d of %s: %w", gen, solution, ErrNotFound)
	}
	return g, err
}

// ListGenerations lists a solution's generations, newest first; limit 0
// lists all.
func (s *Store) ListGenerations(ctx context.Context, solution string, limit int) ([]Generation, error) {
	q := `SELECT ` + generationColumns + ` FROM generations WHERE solution=? ORDER BY generation DESC`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.query(ctx, q, solution)
	if err != nil {
		return nil, fmt.Errorf("listing generations of %s: %w", solution, err)
	}
	defer rows.Close()
	var out []Generation
	for rows.Next() {
		g, err := scanGeneration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *g)
	}
	return out, rows.Err()
}

// Unfinished lists the generations of every solution still recorded as
// deploying, oldest first. Outside a deploy there are none: at a start
// they are the deploys an aim stopped in the middle of.
func (s *Store) Unfinished(ctx context.Context) ([]Generation, error) {
	rows, err := s.query(ctx, `SELECT `+generationColumns+` FROM generations WHERE outcome=? ORDER BY generation`, string(OutcomeDeploying))
	if err != nil {
		return nil, fmt.Errorf("listing unfinished generations: %w", err)
	}
	defer rows.Close()
	var out []Generation
	for rows.Next() {
		g, err := scanGeneration(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *g)
	}
	return out, rows.Err()
}
