package controller

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aimhub/aim/internal/seal"
	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/store"
)

// TestSecrets: a secret is sealed in the store and opened for the
// containers being created; set again, it redeploys the serving
// generation that uses it (a new generation, no build); set by another
// owner, or unused, it restarts nothing; one in use is not removed.
func TestSecrets(t *testing.T) {
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := newHarness(t, Config{Secrets: st, SecretKey: seal.NewKey()})
	ctx := context.Background()

	if ch, err := h.c.SetSecret(ctx, "hello", "", "API_KEY", []byte("v1"), "admin"); err != nil || len(ch.Restarted) != 0 {
		t.Fatalf("before the first deploy: %+v %v", ch, err)
	}
	h.deploy(t, "name: hello\ncomponents:\n  - name: web\n    image: aim-test/server:1\n    env: {API_KEY: {secret: API_KEY}}\n")
	h.wantServing(t, 1, 1)
	values := func() map[string]string {
		t.Helper()
		sp := h.c.runtimeSpec(h.st.rec("hello"))
		if sp.Secrets == nil {
			t.Fatal("the runtime's spec has no secrets")
		}
		v, err := sp.Secrets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := values(); v["API_KEY"] != "v1" {
		t.Fatalf("opened %v", v)
	}

	builds := len(h.b.built)
	ch, err := h.c.SetSecret(ctx, "hello", "", "API_KEY", []byte("v2"), "admin")
	if err != nil || !slices.Equal(ch.Restarted, []string{"web"}) {
		t.Fatalf("setting it again: %+v %v", ch, err)
	}
	h.wantServing(t, 2, 1)
	if len(h.b.built) != builds {
		t.Errorf("the restart built %v", h.b.built[builds:])
	}
	if v := values(); v["API_KEY"] != "v2" {
		t.Errorf("after the restart, opened %v", v)
	}
	rows, err := st.ListSecrets(ctx, "hello", "")
	if err != nil || len(rows) != 1 || bytes.Contains(rows[0].Sealed, []byte("v2")) {
		t.Fatalf("stored %+v %v", rows, err)
	}

	for _, c := range []struct{ name, owner, key string }{
		{"another owner's", "beta", "API_KEY"},
		{"unused", "", "OTHER"},
	} {
		ch, err := h.c.SetSecret(ctx, "hello", c.owner, c.key, []byte("x"), "someone")
		if err != nil || len(ch.Restarted) != 0 {
			t.Errorf("%s secret: %+v %v", c.name, ch, err)
		}
	}
	h.wantServing(t, 2, 1)

	list, err := h.c.ListSecrets(ctx, "hello", "")
	if err != nil || len(list) != 2 || list[0].Name != "API_KEY" || !slices.Equal(list[0].UsedBy, []string{"web"}) || len(list[1].UsedBy) != 0 {
		t.Errorf("list %+v %v", list, err)
	}
	var ie *solution.InputError
	if err := h.c.DeleteSecret(ctx, "hello", "", "API_KEY"); !errors.As(err, &ie) {
		t.Errorf("removing a secret in use: %v", err)
	}
	if err := h.c.DeleteSecret(ctx, "hello", "", "OTHER"); err != nil {
		t.Errorf("removing an unused one: %v", err)
	}
	if err := h.c.DeleteSecret(ctx, "hello", "", "OTHER"); !errors.As(err, &ie) {
		t.Errorf("removing it again: %v", err)
	}
}
