package controller

import (
	"context"
	"errors"
	"testing"

	"github.com/aimhub/aim/internal/solution"
	"github.com/aimhub/aim/internal/spec"
)

// TestDeployOwner pins who a solution belongs to across deploys: the
// first deploy stores the owner the API decided, an update keeps the
// stored one, and a deploy that names another owner than the stored one
// (a provider whose claim raced another's) is refused before anything is
// built.
func TestDeployOwner(t *testing.T) {
	const private = built + "visibility: private\naccess: {emails: [a@example.com]}\n"
	cases := []struct {
		name     string
		manifest string
		// earlier, when set, deploys first with this owner ("-" for none);
		// earlierFails makes that first deploy fail.
		earlier      string
		earlierFails bool
		owner        string
		wantErr      bool
		wantOwner    string
		wantVis      spec.Visibility
	}{
		{name: "a provider's first deploy claims the name", manifest: built, owner: "acme", wantOwner: "acme", wantVis: spec.Public},
		{name: "an admin's first deploy leaves it the admins'", manifest: built, wantOwner: "", wantVis: spec.Public},
		{name: "an admin's update keeps the provider's claim", manifest: built, earlier: "acme", owner: "", wantOwner: "acme", wantVis: spec.Public},
		{name: "the owner's update", manifest: private, earlier: "acme", owner: "acme", wantOwner: "acme", wantVis: spec.Private},
		{name: "another provider's update is refused", manifest: built, earlier: "acme", owner: "beta", wantErr: true, wantOwner: "acme"},
		{name: "a claim holds after a failed first deploy", manifest: built, earlier: "acme", earlierFails: true, owner: "beta", wantErr: true, wantOwner: "acme"},
		{name: "a provider may not take over the admins' solution", manifest: built, earlier: "-", owner: "beta", wantErr: true, wantOwner: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Config{})
			ctx := context.Background()
			if c.earlier != "" {
				if c.earlierFails {
					h.rt.mu.Lock()
					h.rt.plan = all(behaviour{mode: exits, code: 1})
					h.rt.mu.Unlock()
				}
				req := request(manifest(t, c.manifest))
				if c.earlier != "-" {
					req.Owner = c.earlier
				}
				if _, err := h.c.Deploy(ctx, req, nil); (err != nil) != c.earlierFails {
					t.Fatalf("the earlier deploy: %v", err)
				}
			}
			builds := len(h.b.built)
			req := request(manifest(t, c.manifest))
			req.Owner = c.owner
			info, err := h.c.Deploy(ctx, req, nil)
			if c.wantErr {
				var oe *solution.OwnedError
				if !errors.As(err, &oe) || oe.Name != "hello" {
					t.Fatalf("err = %v, want an OwnedError", err)
				}
				if len(h.b.built) != builds {
					t.Errorf("a refused deploy built %v", h.b.built[builds:])
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if info.Owner != c.wantOwner || info.Visibility != c.wantVis {
					t.Errorf("info has owner %q and visibility %q, want %q and %q", info.Owner, info.Visibility, c.wantOwner, c.wantVis)
				}
			}
			if rec := h.st.rec("hello"); rec == nil || rec.Owner != c.wantOwner {
				t.Errorf("the store has %+v, want owner %q", rec, c.wantOwner)
			}
		})
	}
}
