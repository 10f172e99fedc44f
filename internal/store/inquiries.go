package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// inquirySchema keeps visitors' messages to providers and the state of
// their delivery to a provider's webhook, which is signed with a secret of
// the provider's.
var inquirySchema = []string{
	`CREATE TABLE inquiries (
	id            BIGINT PRIMARY KEY,
	solution      TEXT NOT NULL,
	owner         TEXT NOT NULL DEFAULT '',
	name          TEXT NOT NULL,
	organisation  TEXT NOT NULL DEFAULT '',
	email         TEXT NOT NULL,
	message       TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	delivery      TEXT NOT NULL DEFAULT 'none',
	attempts      BIGINT NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	next_attempt  BIGINT NOT NULL DEFAULT 0,
	delivered_at  BIGINT NOT NULL DEFAULT 0
)`,
	`CREATE INDEX inquiries_solution ON inquiries (solution, created_at)`,
	`CREATE INDEX inquiries_pending ON inquiries (delivery, next_attempt)`,
	`ALTER TABLE providers ADD COLUMN webhook_secret TEXT NOT NULL DEFAULT ''`,
}

// Delivery is where an inquiry's webhook delivery stands.
type Delivery string

// The delivery states. None: the provider has no webhook.
const (
	DeliveryNone      Delivery = "none"
	DeliveryPending   Delivery = "pending" // not yet, or retrying
	DeliveryDelivered Delivery = "delivered"
	DeliveryFailed    Delivery = "failed" // given up after the last retry
)

// Inquiry is a visitor's message to a solution's provider. Nothing of the
// visitor but what they typed is kept: no address, no browser.
type Inquiry struct {
	ID int64
	// Solution is the solution asked about; Owner its provider then
	// (empty for the admins'), so that a provider reads its own.
	Solution, Owner                    string
	Name, Organisation, Email, Message string
	CreatedAt                          time.Time
	Delivery                           Delivery
	Attempts                           int
	LastError                          string
	NextAttempt, DeliveredAt           time.Time
}

// AddInquiry stores a new inquiry, pending delivery when deliver is true,
// and sets its ID and CreatedAt. Its fields are the caller's to validate.
func (s *Store) AddInquiry(ctx context.Context, q *Inquiry, deliver bool) error {
	id, err := newInquiryID()
	if err != nil {
		return err
	}
	now := s.now()
	q.ID, q.CreatedAt, q.Delivery = id, now, DeliveryNone
	if deliver {
		q.Delivery, q.NextAttempt = DeliveryPending, now
	}
	_, err = s.exec(ctx, `INSERT INTO inquiries (id, solution, owner, name, organisation, email, message, created_at, delivery, next_attempt)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		q.ID, q.Solution, q.Owner, q.Name, q.Organisation, q.Email, q.Message, millis(now), string(q.Delivery), millis(q.NextAttempt))
	if err != nil {
		return fmt.Errorf("saving an inquiry about %s: %w", q.Solution, err)
	}
	return nil
}

// newInquiryID is random rather than a sequence: both backends take it
// alike, and it says nothing of how many inquiries there are. 53 bits, so
// that JavaScript's numbers hold it exactly.
func newInquiryID() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(b[:])&(1<<53-1)) | 1, nil
}

const inquiryColumns = `id, solution, owner, name, organisation, email, message, created_at, delivery, attempts, last_error, next_attempt, delivered_at`

func scanInquiry(r scanner) (*Inquiry, error) {
	var (
		q                        Inquiry
		created, next, delivered int64
		delivery                 string
	)
	if err := r.Scan(&q.ID, &q.Solution, &q.Owner, &q.Name, &q.Organisation, &q.Email, &q.Message, &created, &delivery,
		&q.Attempts, &q.LastError, &next, &delivered); err != nil {
		return nil, err
	}
	q.CreatedAt, q.Delivery = fromMillis(created), Delivery(delivery)
	if next > 0 {
		q.NextAttempt = fromMillis(next)
	}
	if delivered > 0 {
		q.DeliveredAt = fromMillis(delivered)
	}
	return &q, nil
}

// InquiryFilter chooses inquiries to list; zero fields choose all.
type InquiryFilter struct {
	Solution string
	// Owner lists a provider's inquiries, all its solutions'.
	Owner string
	// OwnerSet makes an empty Owner mean the admins' solutions.
	OwnerSet bool
	// Limit is the most to list, newest first. Zero means 100.
	Limit int
}

// ListInquiries lists inquiries, newest first.
func (s *Store) ListInquiries(ctx context.Context, f InquiryFilter) ([]Inquiry, error) {
	q := `SELECT ` + inquiryColumns + ` FROM inquiries WHERE 1=1`
	var args []any
	if f.Solution != "" {
		q += ` AND solution = ?`
		args = append(args, f.Solution)
	}
	if f.Owner != "" || f.OwnerSet {
		q += ` AND owner = ?`
		args = append(args, f.Owner)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id LIMIT %d`, limit)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing inquiries: %w", err)
	}
	return scanInquiries(rows)
}

// DueDeliveries lists pending deliveries whose next attempt is due.
func (s *Store) DueDeliveries(ctx context.Context, limit int) ([]Inquiry, error) {
	rows, err := s.query(ctx, `SELECT `+inquiryColumns+` FROM inquiries WHERE delivery = 'pending' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?`,
		millis(s.now()), limit)
	if err != nil {
		return nil, fmt.Errorf("listing due deliveries: %w", err)
	}
	return scanInquiries(rows)
}

// RecordDelivery records one delivery attempt of inquiry id: delivered,
// or failed with why and, when next is not zero, when to try again (else
// given up).
func (s *Store) RecordDelivery(ctx context.Context, id int64, attemptErr error, next time.Time) error {
	var res sql.Result
	var err error
	switch {
	case attemptErr == nil:
		res, err = s.exec(ctx, `UPDATE inquiries SET delivery='delivered', attempts=attempts+1, last_error='', delivered_at=? WHERE id=?`,
			millis(s.now()), id)
	case next.IsZero():
		res, err = s.exec(ctx, `UPDATE inquiries SET delivery='failed', attempts=attempts+1, last_error=?, next_attempt=0 WHERE id=?`,
			truncate(attemptErr.Error(), 500), id)
	default:
		res, err = s.exec(ctx, `UPDATE inquiries SET attempts=attempts+1, last_error=?, next_attempt=? WHERE id=?`,
			truncate(attemptErr.Error(), 500), millis(next), id)
	}
	if err != nil {
		return fmt.Errorf("recording the delivery of inquiry %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// WebhookSecret returns the secret a provider's webhook deliveries are
// signed with, making it on first use; rotate makes a new one.
func (s *Store) WebhookSecret(ctx context.Context, provider string, rotate bool) (string, error) {
	var cur string
	err := s.queryRow(ctx, `SELECT webhook_secret FROM providers WHERE name = ?`, provider).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return "", &UnknownProviderError{Name: provider}
	}
	if err != nil {
		return "", fmt.Errorf("reading the webhook secret of %s: %w", provider, err)
	}
	if cur != "" && !rotate {
		return cur, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	secret := "whsec_" + hex.EncodeToString(b)
	// Only the first of two concurrent makers wins; both read the winner.
	q := `UPDATE providers SET webhook_secret = ? WHERE name = ? AND webhook_secret = ?`
	if _, err := s.exec(ctx, q, secret, provider, cur); err != nil {
		return "", fmt.Errorf("saving the webhook secret of %s: %w", provider, err)
	}
	err = s.queryRow(ctx, `SELECT webhook_secret FROM providers WHERE name = ?`, provider).Scan(&cur)
	return cur, err
}

func scanInquiries(rows *sql.Rows) ([]Inquiry, error) {
	defer rows.Close()
	var out []Inquiry
	for rows.Next() {
		in, err := scanInquiry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *in)
	}
	return out, rows.Err()
}
