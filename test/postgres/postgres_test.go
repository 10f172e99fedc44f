package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connecting to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStart(t *testing.T) {
	t.Parallel()
	var dsn string
	t.Run("server", func(t *testing.T) {
		dsn = Start(t)
		conn := connect(t, dsn)
		for _, c := range []struct{ sql, want string }{
			{"SELECT version()", "PostgreSQL "},
			{"SELECT current_user", "postgres"},
			{"SELECT current_database()", "postgres"},
			{"SELECT host(inet_server_addr())", "127.0.0.1"},
			{"SHOW fsync", "off"},
			{"SHOW server_encoding", "UTF8"},
			{"SHOW TimeZone", "UTC"},
		} {
			if got := queryString(t, conn, c.sql); !strings.HasPrefix(got, c.want) {
				t.Errorf("%s = %q, want %q", c.sql, got, c.want)
			}
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE kv (k text PRIMARY KEY, v jsonb)"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(t.Context(), "INSERT INTO kv VALUES ($1, $2)", "a", map[string]int{"n": 1}); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, conn, "SELECT v->>'n' FROM kv WHERE k = 'a'"); got != "1" {
			t.Errorf("read back %q, want 1", got)
		}
	})
	// Once the test ended, the server is gone.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, dsn); err == nil {
		conn.Close(ctx)
		t.Errorf("%s still takes connections after its test ended", dsn)
	}
}

func TestNewDatabase(t *testing.T) {
	t.Parallel()
	names := make(chan string, 3)
	t.Run("group", func(t *testing.T) {
		for i := range 3 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				conn := connect(t, NewDatabase(t))
				name := queryString(t, conn, "SELECT current_database()")
				names <- name
				// Each database starts empty: the others' tables are not there.
				if n := queryString(t, conn, "SELECT count(*)::text FROM pg_tables WHERE schemaname = 'public'"); n != "0" {
					t.Errorf("%s has %s tables, want 0", name, n)
				}
				if _, err := conn.Exec(t.Context(), "CREATE TABLE mine (id int)"); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
	close(names)

	// The databases were distinct, and were dropped with their tests.
	shared.Lock()
	s := shared.srv
	shared.Unlock()
	conn := connect(t, s.dsn("postgres"))
	seen := map[string]bool{}
	for name := range names {
		if seen[name] {
			t.Errorf("database %s given twice", name)
		}
		seen[name] = true
		if !strings.HasPrefix(name, "t_testnewdatabase_group_") {
			t.Errorf("database name %q does not say whose it was", name)
		}
		var exists bool
		if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s outlived its test", name)
		}
	}
	if len(seen) != 3 {
		t.Errorf("%d databases, want 3", len(seen))
	}
}

// A test that leaves a session open still gets its database dropped.
func TestNewDatabaseOpenSession(t *testing.T) {
	t.Parallel()
	var dsn string
	var conn *pgx.Conn
	t.Run("leaves a session open", func(t *testing.T) {
		dsn = NewDatabase(t)
		var err error
		if conn, err = pgx.Connect(t.Context(), dsn); err != nil {
			t.Fatal(err)
		}
	})
	defer conn.Close(context.Background())
	if err := conn.Ping(t.Context()); err == nil {
		t.Errorf("the session to %s survived the drop of its database", dsn)
	}
}

func TestDatabaseName(t *testing.T) {
	tests := []struct {
		test string
		n    int
		want string
	}{
		{"TestStore", 1, "t_teststore_1"},
		{"TestStore/put_and_get#01", 12, "t_teststore_put_and_get_01_12"},
		{"TestÜber/Ä", 3, "t_test_ber_3"},
		{strings.Repeat("TestLong", 20), 7, "t_" + strings.Repeat("testlong", 20)[:59] + "_7"},
	}
	for _, tt := range tests {
		got := databaseName(tt.test, tt.n)
		if got != tt.want || len(got) > 63 {
			t.Errorf("databaseName(%q, %d) = %q, want %q (at most 63 bytes)", tt.test, tt.n, got, tt.want)
		}
	}
}

func TestFindBinDir(t *testing.T) {
	mk := func(t *testing.T, versions ...string) string {
		root := t.TempDir()
		for _, v := range versions {
			bin := filepath.Join(root, v, "bin")
			os.MkdirAll(bin, 0o755)
			for _, p := range []string{"initdb", "postgres"} {
				os.WriteFile(filepath.Join(bin, p), nil, 0o755)
			}
		}
		return root
	}
	tests := []struct {
		name     string
		root     func(t *testing.T) string
		want     string // version directory
		wantFail bool
	}{
		{name: "one", root: func(t *testing.T) string { return mk(t, "15") }, want: "15"},
		{name: "newest of several", root: func(t *testing.T) string { return mk(t, "9.6", "15", "13", "17") }, want: "17"},
		{name: "numeric, not lexical", root: func(t *testing.T) string { return mk(t, "9.6", "10") }, want: "10"},
		{name: "none", root: func(t *testing.T) string { return t.TempDir() }, wantFail: true},
		{name: "no such root", root: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, wantFail: true},
		{
			name: "client only", // postgresql-client has psql but no server
			root: func(t *testing.T) string {
				root := t.TempDir()
				os.MkdirAll(filepath.Join(root, "15", "bin"), 0o755)
				os.WriteFile(filepath.Join(root, "15", "bin", "psql"), nil, 0o755)
				return root
			},
			wantFail: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tt.root(t)
			got, err := findBinDir(root)
			if tt.wantFail {
				if err == nil || !strings.Contains(err.Error(), "install Debian's postgresql package") {
					t.Errorf("findBinDir: %q, %v; want an error saying what to install", got, err)
				}
				return
			}
			if err != nil || got != filepath.Join(root, tt.want, "bin") {
				t.Errorf("findBinDir = %q, %v; want %s", got, err, filepath.Join(root, tt.want, "bin"))
			}
		})
	}
}

// The machine's own PostgreSQL is found: without it every test above
// fails, and this one says why.
func TestInstalled(t *testing.T) {
	if _, err := findBinDir(binRoot); err != nil {
		t.Fatal(err)
	}
	if _, err := runAs(); err != nil {
		t.Fatal(err)
	}
}
