package api

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/runtime"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
	"github.com/aimhub/aim/internal/store"
	"github.com/aimhub/aim/test/postgres"
)

// TestMain stops the PostgreSQL server the tests share once they ran.
func TestMain(m *testing.M) { postgres.Main(m) }

// backends are the stores the API's tests run on, each test on a
// database of its own.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "aim.db") }},
	{"postgres", func(t *testing.T) string { return postgres.NewDatabase(t) }},
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fakeCtl is the controller behind the API in its unit tests: solutions
// in a map, actions that only record themselves. The routes' logic is
// what is under test.
type fakeCtl struct {
	mu   sync.Mutex
	sols map[string]*solution.Info
	// calls records the actions, e.g. "remove b-public".
	calls []string
	// deployed is the last deploy's request.
	deployed solution.DeployRequest
	secrets  map[string]string
	// logins are the registry logins, "user:password" by "owner/host".
	logins map[string]string
	// vols are the volumes kept per solution: one "data" for each
	// solution, and acme-gone's, which acme removed and kept.
	vols map[string][]solution.Volume
}

var (
	_ Controller = (*fakeCtl)(nil)
	_ Volumes    = (*fakeCtl)(nil)
	_ Registries = (*fakeCtl)(nil)
)

func newFakeCtl(sols ...*solution.Info) *fakeCtl {
	f := &fakeCtl{sols: map[string]*solution.Info{}, vols: map[string][]solution.Volume{
		"acme-gone": {{Name: "data", Ref: "aim-acme-gone_data", Size: 1 << 20, Owner: "acme"}},
	}}
	for _, s := range sols {
		f.sols[s.Name] = s
		f.vols[s.Name] = []solution.Volume{{Name: "data", Ref: "aim-" + s.Name + "_data", Size: 1 << 20, Owner: s.Owner}}
	}
	return f
}

func (f *fakeCtl) Volumes(_ context.Context, name string) ([]solution.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vols[name], nil
}

func (f *fakeCtl) DeleteVolume(_ context.Context, name, vol string) error {
	f.record("delete volume %s %s", name, vol)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[name] = slices.DeleteFunc(f.vols[name], func(v solution.Volume) bool { return v.Name == vol })
	return nil
}

func (f *fakeCtl) ExportVolume(_ context.Context, name, vol string, w io.Writer) error {
	f.record("export %s %s", name, vol)
	_, err := io.WriteString(w, "a tar stream")
	return err
}

func (f *fakeCtl) ImportVolume(_ context.Context, name, vol string, r io.Reader) error {
	f.record("import %s %s", name, vol)
	_, err := io.Copy(io.Discard, r)
	return err
}

// sol makes a solution as a controller reports it, from an aim.yaml.
func sol(t *testing.T, owner, yaml string) *solution.Info {
	t.Helper()
	m, err := spec.Parse(spec.FileName, []byte(yaml))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return &solution.Info{Name: m.Name, Title: m.DisplayTitle(), Owner: owner, Visibility: solution.VisibilityOf(m),
		State: solution.Ready, Manifest: m, URL: "http://" + m.Name + ".localhost/", CreatedAt: time.Unix(0, 0).UTC()}
}

func (f *fakeCtl) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeCtl) Deploy(_ context.Context, req solution.DeployRequest, progress solution.Progress) (*solution.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deployed = req
	owner := req.Owner
	if prev, ok := f.sols[req.Manifest.Name]; ok {
		if owner != "" && owner != prev.Owner {
			return nil, &solution.OwnedError{Name: prev.Name}
		}
		owner = prev.Owner
	}
	progress("", "starting containers")
	info := &solution.Info{Name: req.Manifest.Name, Owner: owner, Visibility: solution.VisibilityOf(req.Manifest), State: solution.Ready, Manifest: req.Manifest}
	f.sols[info.Name] = info
	f.calls = append(f.calls, "deploy "+info.Name)
	return info, nil
}

func (f *fakeCtl) Get(_ context.Context, name string) (*solution.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sols[name]
	if !ok {
		return nil, fmt.Errorf("solution %s: %w", name, solution.ErrNotFound)
	}
	c := *s
	return &c, nil
}

func (f *fakeCtl) List(context.Context) []*solution.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*solution.Info
	for _, n := range slices.Sorted(maps.Keys(f.sols)) {
		c := *f.sols[n]
		out = append(out, &c)
	}
	return out
}

func (f *fakeCtl) Remove(_ context.Context, name string) error {
	f.record("remove %s", name)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sols, name)
	return nil
}

func (f *fakeCtl) Logs(_ context.Context, name, _ string, _ runtime.LogOptions) (io.ReadCloser, error) {
	f.record("logs %s", name)
	return io.NopCloser(strings.NewReader("web | listening on :8080\n")), nil
}

func (f *fakeCtl) Wake(_ context.Context, name string) error {
	f.record("wake %s", name)
	return nil
}

func (f *fakeCtl) Sleep(_ context.Context, name string) error {
	f.record("sleep %s", name)
	return nil
}

func (f *fakeCtl) History(_ context.Context, name string, _ int) ([]store.Generation, error) {
	f.record("history %s", name)
	return []store.Generation{{Solution: name, Generation: 1, Outcome: store.OutcomeServing}}, nil
}

func (f *fakeCtl) Rollback(_ context.Context, name string, to int64, by string, _ solution.Progress) (*solution.Info, error) {
	f.record("rollback %s to %d by %s", name, to, by)
	return f.Get(context.Background(), name)
}

// LoginRegistry keeps logins by "owner/host".
func (f *fakeCtl) LoginRegistry(_ context.Context, owner, host, username string, password []byte, by string) (*solution.RegistryLogin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logins == nil {
		f.logins = map[string]string{}
	}
	f.logins[owner+"/"+host] = username + ":" + string(password)
	return &solution.RegistryLogin{Host: host, Username: username, SetAt: time.Unix(0, 0).UTC()}, nil
}

func (f *fakeCtl) RegistryLogins(_ context.Context, owner string) ([]solution.RegistryLogin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []solution.RegistryLogin
	for k, v := range f.logins {
		if o, host, _ := strings.Cut(k, "/"); o == owner {
			user, _, _ := strings.Cut(v, ":")
			out = append(out, solution.RegistryLogin{Host: host, Username: user})
		}
	}
	slices.SortFunc(out, func(a, b solution.RegistryLogin) int { return strings.Compare(a.Host, b.Host) })
	return out, nil
}

func (f *fakeCtl) LogoutRegistry(_ context.Context, owner, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.logins[owner+"/"+host]; !ok {
		return fmt.Errorf("login to %s: %w", host, solution.ErrNotFound)
	}
	delete(f.logins, owner+"/"+host)
	return nil
}

// SetSecret keeps values by "solution/owner/name", as a controller
// would before sealing them.
func (f *fakeCtl) SetSecret(_ context.Context, name, owner, key string, value []byte, by string) (*solution.SecretChange, error) {
	f.record("set secret %s of %s for %q by %s", key, name, owner, by)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets == nil {
		f.secrets = map[string]string{}
	}
	f.secrets[name+"/"+owner+"/"+key] = string(value)
	return &solution.SecretChange{}, nil
}

func (f *fakeCtl) ListSecrets(_ context.Context, name, owner string) ([]solution.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []solution.Secret
	for _, k := range slices.Sorted(maps.Keys(f.secrets)) {
		if rest, ok := strings.CutPrefix(k, name+"/"+owner+"/"); ok {
			out = append(out, solution.Secret{Name: rest, SetAt: time.Unix(0, 0).UTC()})
		}
	}
	return out, nil
}

func (f *fakeCtl) DeleteSecret(_ context.Context, name, owner, key string) error {
	f.record("delete secret %s of %s for %q", key, name, owner)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.secrets[name+"/"+owner+"/"+key]; !ok {
		return fmt.Errorf("secret %s of %s: %w", key, name, store.ErrNotFound)
	}
	delete(f.secrets, name+"/"+owner+"/"+key)
	return nil
}
