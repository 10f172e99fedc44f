// Package store keeps aim's state: the solutions with their manifests and
// owners, the providers, the API tokens with their roles, the sessions of
// people signed in by OpenID Connect, and the platform's keys. It runs on
// an embedded SQLite file (a pure-Go driver, so aim builds without cgo) or
// on PostgreSQL, through database/sql and one set of queries; dialect.go
// holds the few places the two differ.
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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	sqlitedrv "modernc.org/sqlite"     // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned for a solution, provider, token, session or code
// that doesn't exist.
var ErrNotFound = errors.New("not found")

// InputError is a value the store refuses to keep, such as a provider name
// that is no DNS label or a token without a valid role.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// Store is aim's database.
type Store struct {
	db *sql.DB
	d  dialect
	// now is the clock; tests move it.
	now func() time.Time

	// lastUsed notes when each token's LastUsedAt was last written, so
	// that a busy client costs a write a minute, not one per request.
	mu       sync.Mutex
	lastUsed map[string]time.Time
}

// Open opens the database dsn names, creating it and bringing its schema
// up to date if needed. A dsn starting with postgres:// or postgresql://
// is a PostgreSQL connection string (as pgx reads it); anything else is the
// path of an SQLite file, optionally prefixed with sqlite: or file:.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		db   *sql.DB
		d    dialect
		name string
		err  error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		name = redact(dsn)
		d = postgresDialect{}
		db, err = sql.Open("pgx", dsn)
	} else {
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
		name = path
		d = sqliteDialect{}
		db, err = openSQLite(ctx, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	s := &Store{db: db, d: d, now: time.Now, lastUsed: map[string]time.Time{}}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing %s: %w", name, err)
	}
	return s, nil
}

// openSQLite creates the file (0600) and its directory (0700) before
// SQLite opens it, so that the state, which holds token hashes and
// sessions, is never readable by others, not even for a moment.
func openSQLite(ctx context.Context, path string) (*sql.DB, error) {
	file, query, _ := strings.Cut(path, "?")
	if file == "" {
		return nil, errors.New("no file named")
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	// busy_timeout makes a second aim process wait rather than fail; it
	// comes first so that it holds for the pragmas after it (connect
	// covers the one case it does not). WAL lets readers
	// go on while a deploy writes; immediate transactions take the write
	// lock at BEGIN, so two never deadlock upgrading from read to write.
	dsn := "file:" + file + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	if query != "" {
		dsn += "&" + query
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	// SQLite allows one writer; one connection keeps writes ordered.
	db.SetMaxOpenConns(1)
	if err := connect(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// connect makes the store's connection. While another process turns a new
// file to WAL, SQLite answers SQLITE_BUSY at once, without waiting out
// busy_timeout (the wait would risk a deadlock between the two), so a
// second aim starting alongside the first tries again for a while.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(10 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		var e *sqlitedrv.Error
		// The low byte is the primary code: BUSY_RECOVERY and the like too.
		if err == nil || !errors.As(err, &e) || e.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

// redact hides a password in a connection string that goes into errors.
func redact(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 {
		return dsn
	}
	user := dsn[scheme+3 : at]
	if u, _, ok := strings.Cut(user, ":"); ok {
		return dsn[:scheme+3] + u + ":xxxxx" + dsn[at:]
	}
	return dsn
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.d.rebind(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.d.rebind(query), args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.d.rebind(query), args...)
}

type scanner interface{ Scan(dest ...any) error }

// Times are kept as Unix milliseconds in a BIGINT: the same in both
// databases, sortable, and free of time zones. Zero means "never".
func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// nullable stores an empty string as NULL, for the columns that refer to
// another table.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// secret returns 256 random bits, base64url-encoded.
func secret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is SHA-256: tokens, sessions and codes carry 256 random bits,
// so a slow hash adds nothing, and looking a secret up by its hash leaks
// no timing about the secret (an attacker learns at most whether a hash
// prefix matched, which tells nothing about a preimage), so no
// constant-time comparison is needed.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
