// Package postgres runs real, throwaway PostgreSQL servers for tests,
// from Debian's postgresql package (the newest version under
// /usr/lib/postgresql/<version>/bin). A server gets a fresh cluster in a
// temporary directory, listens on 127.0.0.1 on a free port, trusts every
// local connection (superuser postgres, no password) and runs with fsync
// off; as root it runs as the postgres system user.
//
// Start gives a test a server of its own. NewDatabase gives it a
// database of its own on one server the test binary shares, which is
// much cheaper; that needs the package's TestMain to call Main.
//
// Missing binaries fail the test with a message saying what to install;
// nothing is skipped.
package postgres

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Start starts a PostgreSQL server of t's own, stopped and removed when t
// ends, and returns the DSN (a postgres:// URL) of its postgres database.
func Start(t testing.TB) string {
	t.Helper()
	// Not t.TempDir: its parents are root's, mode 0700, and the postgres
	// user could not reach a data directory inside.
	dir, err := os.MkdirTemp("", "aim-postgres-")
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := launch(dir)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("PostgreSQL's log:\n%s", s.tail())
		}
		if err := s.stop(); err != nil {
			t.Errorf("postgres: %v", err)
		}
	})
	return s.dsn("postgres")
}

// shared is the server NewDatabase makes databases on: started on first
// use, stopped by Main.
var shared struct {
	sync.Mutex
	main bool // Main runs the tests
	srv  *server
	err  error // why it could not start; not tried again
	n    int   // databases made, for unique names
}

// Main runs a test binary's tests, then stops and removes the server
// NewDatabase shares among them, and exits. A package whose tests call
// NewDatabase has
//
//	func TestMain(m *testing.M) { postgres.Main(m) }
func Main(m *testing.M) {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if s := shared.srv; s != nil {
		if err := s.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "postgres: stopping the shared server: %v\n", err)
			code = max(code, 1)
		}
		os.RemoveAll(s.dir)
	}
	os.Exit(code)
}

// NewDatabase creates an empty database of t's own on the test binary's
// shared server, dropped when t ends, and returns its DSN (a postgres://
// URL). Tests may call it in parallel.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s, name, err := sharedServer(t.Name())
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin(ctx, s, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("postgres: creating database %s: %v\n%s", name, err, s.tail())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the shared PostgreSQL's log:\n%s", s.tail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the sessions the test left open.
		if err := admin(ctx, s, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("postgres: dropping database %s: %v", name, err)
		}
	})
	return s.dsn(name)
}

// sharedServer returns the shared server, starting it if need be, and a
// new database name for the test called test.
func sharedServer(test string) (*server, string, error) {
	shared.Lock()
	defer shared.Unlock()
	if !shared.main {
		return nil, "", fmt.Errorf("NewDatabase needs the package's TestMain to call postgres.Main(m), which stops the shared server")
	}
	if shared.srv == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "aim-postgres-shared-")
		if err != nil {
			return nil, "", err
		}
		shared.srv, shared.err = launch(dir)
		if shared.err != nil {
			os.RemoveAll(dir)
		}
	}
	if shared.err != nil {
		return nil, "", fmt.Errorf("the shared server: %w", shared.err)
	}
	shared.n++
	return shared.srv, databaseName(test, shared.n), nil
}

var notIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// databaseName makes a database name from a test's name, so one left
// behind says whose it was: lower case, within PostgreSQL's 63 bytes,
// unique by n.
func databaseName(test string, n int) string {
	suffix := fmt.Sprintf("_%d", n)
	base := strings.Trim(notIdent.ReplaceAllString(strings.ToLower(test), "_"), "_")
	base = "t_" + base
	if len(base) > 63-len(suffix) {
		base = base[:63-len(suffix)]
	}
	return base + suffix
}

// admin runs one statement as the superuser in the postgres database.
func admin(ctx context.Context, s *server, sql string) error {
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
