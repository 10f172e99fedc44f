package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is where SQLite and PostgreSQL differ for aim's queries. The
// rest is shared SQL both understand: ON CONFLICT … DO UPDATE, RETURNING,
// TEXT, BIGINT and BOOLEAN columns, and times as Unix milliseconds.
type dialect interface {
	// rebind turns the ? placeholders the queries are written with into
	// the database's own.
	rebind(query string) string
	// lockMigrations makes tx the only migration running on the database
	// until it ends.
	lockMigrations(ctx context.Context, tx *sql.Tx) error
	// foreignKey reports whether err is a foreign key's refusal.
	foreignKey(err error) bool
	// bytesType is the column type of binary data.
	bytesType() string
}

type sqliteDialect struct{}

func (sqliteDialect) rebind(q string) string { return q }

// lockMigrations has nothing to do: the store's transactions BEGIN
// IMMEDIATE, which already excludes every other writer of the file.
func (sqliteDialect) lockMigrations(context.Context, *sql.Tx) error { return nil }

func (sqliteDialect) foreignKey(err error) bool {
	var e *sqlitedrv.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func (sqliteDialect) bytesType() string { return "BLOB" }

type postgresDialect struct{}

func (postgresDialect) bytesType() string { return "BYTEA" }

// rebind numbers the placeholders: ? becomes $1, $2, …. The queries hold
// no ? in literals, so every ? is a placeholder.
func (postgresDialect) rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for _, r := range q {
		if r != '?' {
			b.WriteRune(r)
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// migrationLock is the key of the advisory lock that serializes aim's
// migrations on a PostgreSQL database ("aim" in ASCII).
const migrationLock = 0x61696d

// lockMigrations takes a transaction-scoped advisory lock: two aim
// processes starting at once migrate one after the other, and the lock
// goes with the transaction, whether it commits, fails or its connection
// drops.
func (postgresDialect) lockMigrations(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock)
	return err
}

func (postgresDialect) foreignKey(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == "23503" // foreign_key_violation
}
