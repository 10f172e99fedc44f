package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/api"
	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/internal/testlog"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ownedCtl is a controller with one solution, acme's, for the API the
// CLI's tests run against: the commands under test manage providers and
// tokens, which live in the real store.
type ownedCtl struct{}

var _ api.Controller = ownedCtl{}

func (ownedCtl) info() *solution.Info {
	return &solution.Info{Name: "demo", Owner: "acme", State: solution.Ready, Manifest: &spec.Manifest{Name: "demo"}}
}
func (ownedCtl) Deploy(context.Context, solution.DeployRequest, solution.Progress) (*solution.Info, error) {
	return nil, &solution.InputError{Msg: "not in this test"}
}
func (c ownedCtl) Get(_ context.Context, name string) (*solution.Info, error) {
	if name != "demo" {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	return c.info(), nil
}
func (c ownedCtl) List(context.Context) []*solution.Info { return []*solution.Info{c.info()} }
func (ownedCtl) Remove(context.Context, string) error    { return nil }
func (ownedCtl) Wake(context.Context, string) error      { return nil }
func (ownedCtl) Sleep(context.Context, string) error     { return nil }
func (ownedCtl) Logs(context.Context, string, string, runtime.LogOptions) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

// session runs aim commands against one API server and keeps a
// transcript of them, with secrets, IDs and times made stable.
type session struct {
	t      *testing.T
	server string
	// tokens are the secrets of the callers, by name.
	tokens map[string]string
	out    strings.Builder
}

var (
	secretRE = regexp.MustCompile(store.TokenPrefix + `[A-Za-z0-9_-]{43}`)
	idRE     = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	timeRE   = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\dZ`)
)

// run runs aim args as who and returns its stdout, stderr and exit code.
func (s *session) run(who string, args ...string) (string, string, int) {
	s.t.Helper()
	var stdout, stderr bytes.Buffer
	full := append([]string{"--server", s.server}, args...)
	if tok := s.tokens[who]; tok != "" {
		full = append(full, "--token", tok)
	}
	code := Main(context.Background(), full, &stdout, &stderr)
	// Listings order tokens by when they were made, to the millisecond:
	// the next one is made in a later one.
	time.Sleep(2 * time.Millisecond)
	// The placeholders are as wide as what they replace, so that tables
	// stay aligned.
	stable := func(b string) string {
		b = secretRE.ReplaceAllString(b, "<secret>")
		b = idRE.ReplaceAllString(b, "<---token-id--->")
		return timeRE.ReplaceAllString(b, "YYYY-MM-DD hh:mmZ")
	}
	shown := make([]string, len(args))
	for i, a := range args {
		shown[i] = a
		if strings.Contains(a, " ") {
			shown[i] = fmt.Sprintf("%q", a)
		}
	}
	fmt.Fprintf(&s.out, "$ aim %s    # as %s\n%s", stable(strings.Join(shown, " ")), who, stable(stdout.String()))
	if stderr.Len() > 0 {
		fmt.Fprintf(&s.out, "stderr: %s", stable(stderr.String()))
	}
	fmt.Fprintf(&s.out, "exit %d\n\n", code)
	return stdout.String(), stderr.String(), code
}

// TestRoleCommands runs the provider, token and whoami commands against
// the real API on a real store, as an admin, a provider and no one, and
// compares the transcript with testdata/roles.golden (-update rewrites
// it).
func TestRoleCommands(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // no client configuration
	t.Setenv("AIM_TOKEN", "")
	t.Setenv("AIM_SERVER", "")
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin, _, err := st.CreateToken(ctx, store.Token{Name: "admin", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{TempDir: t.TempDir(), Logger: testlog.Logger(t, slog.LevelDebug)}, ownedCtl{}, st))
	defer srv.Close()
	s := &session{t: t, server: srv.URL, tokens: map[string]string{"admin": admin}}

	s.run("admin", "whoami")
	s.run("admin", "provider", "add", "acme", "--display-name", "ACME Labs", "--email", "ops@acme.example", "--webhook", "https://acme.example/hook")
	s.run("admin", "provider", "add", "beta")
	s.run("admin", "provider", "ls")
	out, errOut, _ := s.run("admin", "token", "create", "--provider", "acme", "--name", "laptop", "--expires", "90d")
	if !strings.Contains(errOut, "The secret above is not shown again") || !secretRE.MatchString(out) {
		t.Errorf("token create printed %q and %q", out, errOut)
	}
	s.tokens["acme"] = strings.TrimSpace(out)
	s.run("acme", "whoami")
	s.run("acme", "provider", "ls")
	out, _, _ = s.run("acme", "token", "create", "--name", "ci")
	s.tokens["acme ci"] = strings.TrimSpace(out)
	s.run("acme", "token", "create", "--provider", "beta")
	s.run("acme", "token", "create", "--role", "admin")
	s.run("admin", "token", "create", "--role", "visitor", "--email", "ana@example.com", "--groups", "staff,beta", "--name", "ana")
	_, errOut, _ = s.run("admin", "token", "create", "--provider", "beta", "--name", "beta ci")
	betaID := idRE.FindString(errOut)
	s.run("admin", "token", "create", "--role", "root")
	s.run("admin", "token", "create", "--provider", "acme", "--expires", "3x")
	s.run("admin", "token", "create", "--provider", "nope")
	s.run("acme", "token", "ls")
	s.run("acme", "token", "revoke", betaID)
	s.run("acme ci", "whoami")
	s.run("acme", "token", "revoke", tokenID(t, st, "ci"))
	s.run("acme ci", "whoami")
	s.run("admin", "token", "ls")
	s.run("admin", "provider", "rm", "acme")
	s.run("admin", "provider", "rm", "beta")
	s.run("nobody", "whoami")
	s.run("nobody", "provider", "ls")

	path := filepath.Join("testdata", "roles.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(s.out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if s.out.String() != string(want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, s.out.String())
	}
}

// tokenID is the ID of the token named name.
func tokenID(t *testing.T, st *store.Store, name string) string {
	t.Helper()
	ts, err := st.ListTokens(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range ts {
		if tok.Name == name {
			return tok.ID
		}
	}
	t.Fatalf("no token %q", name)
	return ""
}
