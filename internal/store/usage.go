package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// usageSchema keeps counts per solution and day, the open days' visitor
// hashes and their keys (see internal/usage).
var usageSchema = []string{
	`CREATE TABLE usage_daily (
	solution    TEXT NOT NULL,
	day         TEXT NOT NULL,
	views       BIGINT NOT NULL DEFAULT 0,
	api         BIGINT NOT NULL DEFAULT 0,
	errors      BIGINT NOT NULL DEFAULT 0,
	wakes       BIGINT NOT NULL DEFAULT 0,
	wake_ms     BIGINT NOT NULL DEFAULT 0,
	last_visit  BIGINT NOT NULL DEFAULT 0,
	visitors    BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (solution, day)
)`,
	`CREATE TABLE usage_visitors (
	solution TEXT NOT NULL,
	day      TEXT NOT NULL,
	hash     TEXT NOT NULL,
	PRIMARY KEY (solution, day, hash)
)`,
	`CREATE TABLE usage_keys (
	day TEXT PRIMARY KEY,
	k   TEXT NOT NULL
)`,
}

// UsageCounts are what a flush adds to a solution's day.
type UsageCounts struct {
	Views, API, Errors, Wakes, WakeMillis int64
	// LastVisit is Unix milliseconds; the later of stored and this stays.
	LastVisit int64
}

// UsageDay is one solution's day.
type UsageDay struct {
	Day                                 string // YYYY-MM-DD, UTC
	Views, Visitors, API, Errors, Wakes int64
	WakeTime                            time.Duration
	LastVisit                           time.Time
}

// UsageKey returns the key of day's visitor hashes, making it on first
// use (the first of two makers wins, both read it).
func (s *Store) UsageKey(ctx context.Context, day string) ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	if _, err := s.exec(ctx, `INSERT INTO usage_keys (day, k) VALUES (?, ?) ON CONFLICT (day) DO NOTHING`, day, hex.EncodeToString(k)); err != nil {
		return nil, fmt.Errorf("making the usage key of %s: %w", day, err)
	}
	var kh string
	if err := s.queryRow(ctx, `SELECT k FROM usage_keys WHERE day = ?`, day).Scan(&kh); err != nil {
		return nil, fmt.Errorf("reading the usage key of %s: %w", day, err)
	}
	return hex.DecodeString(kh)
}

// AddUsage adds c to solution's day, and its visitors' hashes (each
// counted once a day however often it is added).
func (s *Store) AddUsage(ctx context.Context, day, solution string, c UsageCounts, visitors [][]byte) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, s.d.rebind(`INSERT INTO usage_daily (solution, day, views, api, errors, wakes, wake_ms, last_visit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (solution, day) DO UPDATE SET views = usage_daily.views + excluded.views, api = usage_daily.api + excluded.api,
errors = usage_daily.errors + excluded.errors, wakes = usage_daily.wakes + excluded.wakes, wake_ms = usage_daily.wake_ms + excluded.wake_ms,
last_visit = CASE WHEN excluded.last_visit > usage_daily.last_visit THEN excluded.last_visit ELSE usage_daily.last_visit END`),
		solution, day, c.Views, c.API, c.Errors, c.Wakes, c.WakeMillis, c.LastVisit)
	if err != nil {
		return fmt.Errorf("adding usage of %s on %s: %w", solution, day, err)
	}
	for _, h := range visitors {
		if _, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO usage_visitors (solution, day, hash) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`),
			solution, day, hex.EncodeToString(h)); err != nil {
			return fmt.Errorf("adding visitors of %s on %s: %w", solution, day, err)
		}
	}
	return tx.Commit()
}

// CloseUsageDays ends the days before before: each day's distinct
// visitors become a count, and the hashes and the key go.
func (s *Store) CloseUsageDays(ctx context.Context, before string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`UPDATE usage_daily SET visitors = visitors + (SELECT COUNT(*) FROM usage_visitors v WHERE v.solution = usage_daily.solution AND v.day = usage_daily.day)
WHERE day < ? AND EXISTS (SELECT 1 FROM usage_visitors v WHERE v.solution = usage_daily.solution AND v.day = usage_daily.day)`,
		`DELETE FROM usage_visitors WHERE day < ?`,
		`DELETE FROM usage_keys WHERE day < ?`,
	} {
		if _, err := tx.ExecContext(ctx, s.d.rebind(q), before); err != nil {
			return fmt.Errorf("closing usage days before %s: %w", before, err)
		}
	}
	return tx.Commit()
}

// Usage returns solution's days from since (YYYY-MM-DD) on, oldest first;
// an open day's visitors are counted from its hashes.
func (s *Store) Usage(ctx context.Context, solution, since string) ([]UsageDay, error) {
	rows, err := s.query(ctx, `SELECT day, views, api, errors, wakes, wake_ms, last_visit,
visitors + (SELECT COUNT(*) FROM usage_visitors v WHERE v.solution = usage_daily.solution AND v.day = usage_daily.day)
FROM usage_daily WHERE solution = ? AND day >= ? ORDER BY day`, solution, since)
	if err != nil {
		return nil, fmt.Errorf("reading usage of %s: %w", solution, err)
	}
	defer rows.Close()
	var out []UsageDay
	for rows.Next() {
		var d UsageDay
		var wakeMS, last int64
		if err := rows.Scan(&d.Day, &d.Views, &d.API, &d.Errors, &d.Wakes, &wakeMS, &last, &d.Visitors); err != nil {
			return nil, err
		}
		d.WakeTime = time.Duration(wakeMS) * time.Millisecond
		if last > 0 {
			d.LastVisit = fromMillis(last)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// UsageTotals sums each solution's page views and API requests from since
// (YYYY-MM-DD) on, in one query: the catalog's "most used" order. A
// solution without any is absent.
func (s *Store) UsageTotals(ctx context.Context, since string) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT solution, SUM(views + api) FROM usage_daily WHERE day >= ? GROUP BY solution`, since)
	if err != nil {
		return nil, fmt.Errorf("summing usage since %s: %w", since, err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return nil, fmt.Errorf("summing usage since %s: %w", since, err)
		}
		if n > 0 {
			out[name] = n
		}
	}
	return out, rows.Err()
}
