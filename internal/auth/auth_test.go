package auth

import (
	"testing"

	"github.com/aimhub/aim/internal/spec"
)

func TestAdmits(t *testing.T) {
	private := &spec.Manifest{Name: "s", Visibility: spec.Private, Access: spec.Access{
		Emails: []string{"Alice@Example.com"}, Domains: []string{"partner.org"}, Groups: []string{"testers"}}}
	unlisted := &spec.Manifest{Name: "u", Visibility: spec.Unlisted}
	public := &spec.Manifest{Name: "p"}
	anon := Identity{}
	alice := Identity{Role: Visitor, Email: "alice@example.com"}
	partner := Identity{Role: Visitor, Email: "bob@partner.org", EmailVerified: true}
	unverified := Identity{Role: Visitor, Email: "eve@partner.org"}
	subdomain := Identity{Role: Visitor, Email: "eve@x.partner.org", EmailVerified: true}
	tester := Identity{Role: Visitor, Email: "carol@else.com", Groups: []string{"testers"}}
	stranger := Identity{Role: Visitor, Email: "mallory@else.com", Groups: []string{"others"}}
	owner := Identity{Role: Provider, Provider: "acme"}
	other := Identity{Role: Provider, Provider: "globex"}
	admin := Identity{Role: Admin}
	for _, tc := range []struct {
		name          string
		id            Identity
		m             *spec.Manifest
		admits, lists bool
	}{
		{"anonymous, public", anon, public, true, true},
		{"anonymous, unlisted", anon, unlisted, true, false},
		{"owner, unlisted", owner, unlisted, true, true},
		{"anonymous, private", anon, private, false, false},
		{"listed e-mail, any case", alice, private, true, true},
		{"verified address at a listed domain", partner, private, true, true},
		{"unverified address at a listed domain", unverified, private, false, false},
		{"a subdomain of a listed domain", subdomain, private, false, false},
		{"listed group", tester, private, true, true},
		{"signed in, not listed", stranger, private, false, false},
		{"owner", owner, private, true, true},
		{"another provider", other, private, false, false},
		{"admin", admin, private, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Admits(tc.id, "acme", tc.m); got != tc.admits {
				t.Errorf("Admits = %v, want %v", got, tc.admits)
			}
			if got := Lists(tc.id, "acme", tc.m); got != tc.lists {
				t.Errorf("Lists = %v, want %v", got, tc.lists)
			}
		})
	}
}

func TestManagesAndDeploy(t *testing.T) {
	acme := Identity{Role: Provider, Provider: "acme"}
	for _, tc := range []struct {
		name            string
		id              Identity
		owner           string
		exists          bool
		manages, deploy bool
	}{
		{"admin, any", Identity{Role: Admin}, "acme", true, true, true},
		{"admin, platform-owned", Identity{Role: Admin}, "", true, true, true},
		{"provider, own", acme, "acme", true, true, true},
		{"provider, another's", acme, "globex", true, false, false},
		{"provider, platform-owned", acme, "", true, false, false},
		{"provider, a new name", acme, "", false, false, true},
		{"provider token without a provider", Identity{Role: Provider}, "", false, false, false},
		{"visitor", Identity{Role: Visitor, Email: "a@b.co"}, "acme", true, false, false},
		{"visitor, a new name", Identity{Role: Visitor}, "", false, false, false},
		{"anonymous", Identity{}, "acme", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.id.Manages(tc.owner); got != tc.manages {
				t.Errorf("Manages = %v, want %v", got, tc.manages)
			}
			if got := tc.id.MayDeployAs(tc.owner, tc.exists); got != tc.deploy {
				t.Errorf("MayDeployAs = %v, want %v", got, tc.deploy)
			}
		})
	}
}
