package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aimhub/aim/test/postgres"
)

// TestMain stops the PostgreSQL server the tests share once they ran.
func TestMain(m *testing.M) { postgres.Main(m) }

// backends are the databases every test of the store runs against, each
// test on a database of its own.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "aim.db") }},
	{"postgres", func(t *testing.T) string { return postgres.NewDatabase(t) }},
}

// eachBackend runs test once per backend, with a new database's DSN.
func eachBackend(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.dsn(t)) })
	}
}

func openStore(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// each opens a new store per backend and runs test on it.
func each(t *testing.T, test func(t *testing.T, s *Store)) {
	t.Helper()
	eachBackend(t, func(t *testing.T, dsn string) { test(t, openStore(t, dsn)) })
}

// clock is a settable Store.now, at whole milliseconds as stored.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func useClock(s *Store) *clock {
	c := &clock{t: time.UnixMilli(time.Now().UnixMilli())}
	s.now = c.now
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func versions(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM schema_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenTwiceMigratesOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		a := openStore(t, dsn)
		if _, _, err := a.CreateToken(context.Background(), Token{Name: "kept", Role: RoleAdmin}); err != nil {
			t.Fatal(err)
		}
		a.Close()
		b := openStore(t, dsn)
		if n := versions(t, b); n != len(migrations) {
			t.Errorf("schema_version has %d rows, want %d", n, len(migrations))
		}
		if has, err := b.HasTokens(context.Background()); err != nil || !has {
			t.Errorf("HasTokens after reopening = %v, %v; the second Open lost data", has, err)
		}
	})
}

// Two aim processes starting together on one new database: both open it,
// and the schema is made exactly once.
func TestConcurrentOpens(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				stores[i], errs[i] = Open(context.Background(), dsn)
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
				continue
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		if t.Failed() {
			return
		}
		if got := versions(t, stores[0]); got != len(migrations) {
			t.Errorf("schema_version has %d rows, want %d", got, len(migrations))
		}
	})
}

func TestNewerSchemaRefused(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		if _, err := s.exec(context.Background(), `INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'future', 0)`, len(migrations)+1); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if _, err := Open(context.Background(), dsn); !errors.Is(err, ErrSchemaNewer) {
			t.Errorf("Open of a newer schema = %v, want ErrSchemaNewer", err)
		}
	})
}

// oldSchema is the schema as aim wrote it before schema versions.
const oldSchema = `
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
INSERT INTO solutions VALUES ('hello', '{"name":"hello","components":[{"name":"web","image":"x"}]}', '{"web":"x"}', 7, 'sleeping', '', 1, '', 1700000000000, 1700000001000);
INSERT INTO counters VALUES ('generation', 7);
`

func TestMigrateOldSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "aim.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"admin": TokenPrefix + "old-admin-secret", "ci": TokenPrefix + "old-ci-secret"}
	for name, sec := range secrets {
		if _, err := old.Exec(`INSERT INTO tokens VALUES (?, ?, 1700000000000)`, hashSecret(sec), name); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	s := openStore(t, path)
	if n := versions(t, s); n != len(migrations) {
		t.Errorf("schema_version has %d rows, want %d", n, len(migrations))
	}
	for name, sec := range secrets {
		tok, err := s.VerifyToken(ctx, sec)
		if err != nil {
			t.Errorf("the old token %s: %v", name, err)
			continue
		}
		if tok.Name != name || tok.Role != RoleAdmin || tok.ID == "" || !tok.CreatedAt.Equal(time.UnixMilli(1700000000000)) {
			t.Errorf("the old token %s became %+v, want an admin token of that name and time", name, tok)
		}
	}
	sol, err := s.Get(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if sol.Owner != "" || sol.Generation != 7 || !sol.SkipChecks || sol.State != "sleeping" || sol.Images["web"] != "x" {
		t.Errorf("the old solution became %+v", sol)
	}
	if g, err := s.NextGeneration(ctx); err != nil || g != 8 {
		t.Errorf("NextGeneration after migrating = %d, %v; want 8", g, err)
	}
	// The new schema is there: a provider can own the old solution.
	if err := s.PutProvider(ctx, &Provider{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	sol.Owner = "acme"
	if err := s.Put(ctx, sol); err != nil {
		t.Fatal(err)
	}
}

func TestFileModes(t *testing.T) {
	// With no umask, modes that were left to the defaults would show.
	defer syscall.Umask(syscall.Umask(0))
	dir := filepath.Join(t.TempDir(), "data", "state")
	path := filepath.Join(dir, "aim.db")
	s := openStore(t, path)
	if _, _, err := s.CreateToken(context.Background(), Token{Name: "admin", Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want os.FileMode
	}{
		{filepath.Dir(dir), 0o700},
		{dir, 0o700},
		{path, 0o600},
		{path + "-wal", 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Error(err)
			continue
		}
		if got := fi.Mode().Perm(); got != c.want {
			t.Errorf("%s has mode %v, want %v", c.path, got, c.want)
		}
	}
}

func TestSQLiteDSNs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "aim.db")
	sec, _, err := openStore(t, path).CreateToken(ctx, Token{Name: "admin", Role: RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	for _, dsn := range []string{path, "sqlite:" + path, "file:" + path} {
		t.Run(dsn, func(t *testing.T) {
			if _, err := openStore(t, dsn).VerifyToken(ctx, sec); err != nil {
				t.Errorf("the token made through the path, through %s: %v", dsn, err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://aim:s3cret@db:5432/aim?sslmode=require", "postgres://aim:xxxxx@db:5432/aim?sslmode=require"},
		{"postgresql://aim@db/aim", "postgresql://aim@db/aim"},
		{"postgres://db/aim", "postgres://db/aim"},
	} {
		if got := redact(c.in); got != c.want {
			t.Errorf("redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`UPDATE t SET a=?, b=? WHERE c=?`, `UPDATE t SET a=$1, b=$2 WHERE c=$3`},
	} {
		if got := (postgresDialect{}).rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
