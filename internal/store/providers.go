package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/aimhub/aim/internal/spec"
)

// Provider is an organisation that publishes solutions on the platform.
type Provider struct {
	// Name is a DNS label, the provider's key.
	Name        string
	DisplayName string
	// Email is whom to write to about the provider's solutions; optional.
	Email string
	// Webhook is an http(s) URL told of events on the provider's
	// solutions; optional.
	Webhook   string
	CreatedAt time.Time
}

// InUseError refuses to delete a provider that still owns solutions.
type InUseError struct {
	Provider  string
	Solutions []string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("provider %s still owns %s: remove them first", e.Provider, strings.Join(e.Solutions, ", "))
}

func (p *Provider) validate() error {
	if err := spec.ValidName(p.Name); err != nil {
		return inputErrorf("provider name %v", err)
	}
	if p.Email != "" {
		if _, err := mail.ParseAddress(p.Email); err != nil {
			return inputErrorf("provider %s: email %q: %v", p.Name, p.Email, err)
		}
	}
	if p.Webhook != "" {
		u, err := url.Parse(p.Webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return inputErrorf("provider %s: webhook %q is no http(s) URL", p.Name, p.Webhook)
		}
	}
	return nil
}

// PutProvider creates a provider or updates one's details; a provider
// keeps its CreatedAt, which PutProvider sets in p.
func (s *Store) PutProvider(ctx context.Context, p *Provider) error {
	if err := p.validate(); err != nil {
		return err
	}
	var created int64
	err := s.queryRow(ctx, `
INSERT INTO providers (name, display_name, email, webhook, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(name) DO UPDATE SET display_name=excluded.display_name, email=excluded.email, webhook=excluded.webhook
RETURNING created_at`,
		p.Name, p.DisplayName, p.Email, p.Webhook, millis(s.now())).Scan(&created)
	if err != nil {
		return fmt.Errorf("saving provider %s: %w", p.Name, err)
	}
	p.CreatedAt = fromMillis(created)
	return nil
}

const providerColumns = `name, display_name, email, webhook, created_at`

func scanProvider(r scanner) (*Provider, error) {
	var (
		p       Provider
		created int64
	)
	if err := r.Scan(&p.Name, &p.DisplayName, &p.Email, &p.Webhook, &created); err != nil {
		return nil, err
	}
	p.CreatedAt = fromMillis(created)
	return &p, nil
}

// GetProvider returns one provider.
func (s *Store) GetProvider(ctx context.Context, name string) (*Provider, error) {
	p, err := scanProvider(s.queryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE name=?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("provider %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading provider %s: %w", name, err)
	}
	return p, nil
}

// ListProviders returns every provider, by name.
func (s *Store) ListProviders(ctx context.Context) ([]Provider, error) {
	rows, err := s.query(ctx, `SELECT `+providerColumns+` FROM providers ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing providers: %w", err)
	}
	defer rows.Close()
	var out []Provider
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, fmt.Errorf("listing providers: %w", err)
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

// DeleteProvider removes a provider with its tokens and its people's
// sessions, or refuses with an *InUseError while it owns solutions.
func (s *Store) DeleteProvider(ctx context.Context, name string) error {
	// The solutions' foreign key refuses the delete, atomically, however
	// a deploy races it; the refusal is then told with their names.
	res, err := s.exec(ctx, `DELETE FROM providers WHERE name=?`, name)
	if s.d.foreignKey(err) {
		sols, lerr := s.ListByOwner(ctx, name)
		if lerr != nil {
			return fmt.Errorf("deleting provider %s: %w", name, lerr)
		}
		e := &InUseError{Provider: name}
		for _, sol := range sols {
			e.Solutions = append(e.Solutions, sol.Name)
		}
		return e
	}
	if err != nil {
		return fmt.Errorf("deleting provider %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("provider %s: %w", name, ErrNotFound)
	}
	// Its registry logins go with it (a provider made later under the
	// same name is someone else), their hosts stay known as private.
	if _, err := s.exec(ctx, `UPDATE registry_logins SET username = '', sealed = ? WHERE owner=?`, []byte{}, name); err != nil {
		return fmt.Errorf("deleting the registry logins of provider %s: %w", name, err)
	}
	return nil
}
