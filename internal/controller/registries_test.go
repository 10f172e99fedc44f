package controller

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/registry"
	"github.com/aimhub/aim/internal/seal"
	"github.com/aimhub/aim/internal/store"
)

// TestRegistryLogins: an owner's login pulls the images of its own
// solutions only. Another owner naming the same private image pulls it
// afresh without a login, even though the engine has it, and is refused
// with the registry and the missing login named.
func TestRegistryLogins(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "aim.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, p := range []string{"acme", "rival"} {
		if err := st.PutProvider(ctx, &store.Provider{Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	h := newHarness(t, Config{Registries: st, SecretKey: seal.NewKey()})
	const img = "127.0.0.1:5000/acme/web:1"
	auth, err := registry.EngineAuth(registry.Login{Host: "127.0.0.1:5000", Username: "acme", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	h.b.wantAuth = map[string]string{img: auth}
	deploy := func(name, owner string) error {
		req := request(manifest(t, "name: "+name+"\ncomponents:\n  - name: web\n    image: "+img+"\n"))
		req.Owner = owner
		_, err := h.c.Deploy(ctx, req, nil)
		return err
	}

	// No one has logged in: the engine's own lookup, which the fake
	// lets through, decides (a public image).
	if err := deploy("shop", "acme"); err != nil {
		t.Fatalf("before any login: %v", err)
	}
	if len(h.b.pulls) != 0 {
		t.Errorf("pulled %v though no one has a login to the registry", h.b.pulls)
	}

	if _, err := h.c.LoginRegistry(ctx, "acme", "127.0.0.1:5000", "acme", []byte("s3cret"), "acme's token"); err != nil {
		t.Fatal(err)
	}
	ls, err := h.c.RegistryLogins(ctx, "acme")
	if err != nil || len(ls) != 1 || ls[0].Host != "127.0.0.1:5000" || ls[0].Username != "acme" {
		t.Fatalf("acme's logins: %+v %v", ls, err)
	}
	sealed, _ := st.ListRegistryLogins(ctx, "acme")
	if strings.Contains(string(sealed[0].Sealed), "s3cret") {
		t.Fatal("the password is kept in clear")
	}
	if err := deploy("shop", "acme"); err != nil {
		t.Fatalf("acme, logged in: %v", err)
	}
	if got := h.b.pulls[len(h.b.pulls)-1]; got != img+" "+auth {
		t.Errorf("acme's pull: %q", got)
	}

	err = deploy("copycat", "rival")
	wantInputError(t, err, "registry 127.0.0.1:5000 wants a login, and provider rival has none: run `aim registry login 127.0.0.1:5000")
	if got := h.b.pulls[len(h.b.pulls)-1]; got != img+" " {
		t.Errorf("rival's pull went with %q", got)
	}
	if _, err := h.c.RegistryLogins(ctx, "rival"); err != nil {
		t.Fatal(err)
	}

	if err := h.c.LogoutRegistry(ctx, "acme", "127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	wantInputError(t, deploy("shop", "acme"), "provider acme has none")
}

// TestBuiltImagesAreTheirSolutions: an image: component naming an image
// aim built for another solution is refused (it would hand that build
// over); a rollback, which names its own generation's, still serves.
func TestBuiltImagesAreTheirSolutions(t *testing.T) {
	h := newHarness(t, Config{})
	h.deploy(t, "name: shop\ncomponents:\n  - name: web\n    build: web\n")
	built := h.b.built[0]
	req := request(manifest(t, "name: copycat\ncomponents:\n  - name: web\n    image: "+built+"\n"))
	req.Owner = "rival"
	_, err := h.c.Deploy(context.Background(), req, nil)
	wantInputError(t, err, "is none of solution copycat's")
	h.deploy(t, "name: shop\ncomponents:\n  - name: web\n    build: web\n")
	if _, err := h.c.Rollback(context.Background(), "shop", 0, "test", nil); err != nil {
		t.Fatalf("rolling back to the built image: %v", err)
	}
}
