// Package auth is who may do what in aim, as pure decisions: the roles,
// the identity a request carries once its credential was checked, and the
// rules that admit an identity to a solution or let it manage one. It
// checks no credential itself (internal/store keeps tokens and sessions,
// internal/signin signs people in) and knows no HTTP, so that the API,
// the pages and the gateway on both runtimes decide alike.
package auth

import (
	"slices"
	"strings"

	"github.com/aimhub/aim/internal/spec"
)

// Role is what an identity may do on the platform.
type Role string

// The roles. An identity with no role is an anonymous visitor.
const (
	// Admin runs the platform: everything, providers and tokens included.
	Admin Role = "admin"
	// Provider deploys, updates and removes its own solutions, and alone
	// (with the admins) reads their logs, environment, inquiries and usage.
	Provider Role = "provider"
	// Visitor browses the catalog and uses the solutions it may see.
	Visitor Role = "visitor"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Admin || r == Provider || r == Visitor }

// Identity is who a request comes from, once its credential was checked.
// The zero Identity is an anonymous visitor.
type Identity struct {
	Role Role
	// Provider names the provider a provider identity acts for.
	Provider string
	// Email is a person's address (a signed-in person, a visitor's
	// personal access token); EmailVerified says the OpenID provider
	// vouched for it, which admitting by domain needs.
	Email         string
	EmailVerified bool
	Name          string
	// Groups are the person's groups, as the OpenID provider names them.
	Groups []string
	// TokenID names the API token the request carried, if any.
	TokenID string
}

// Anonymous reports whether no credential was presented.
func (id Identity) Anonymous() bool { return id.Role == "" }

// IsAdmin reports whether id runs the platform.
func (id Identity) IsAdmin() bool { return id.Role == Admin }

// Manages reports whether id may change a solution owned by owner (a
// provider's name; empty for one the admins own): deploy over it, remove,
// wake or sleep it, read its logs, environment, inquiries and usage.
func (id Identity) Manages(owner string) bool {
	switch id.Role {
	case Admin:
		return true
	case Provider:
		return owner != "" && id.Provider == owner
	}
	return false
}

// MayDeployAs reports whether id may claim or update a solution whose
// current owner is owner; exists is false for a name no one holds yet.
func (id Identity) MayDeployAs(owner string, exists bool) bool {
	if id.IsAdmin() {
		return true
	}
	if id.Role != Provider || id.Provider == "" {
		return false
	}
	return !exists || owner == id.Provider
}

// Admits reports whether id may reach and use a solution of owner with
// manifest m: everyone a public or unlisted one; a private one its owner,
// the admins and those its access list names.
func Admits(id Identity, owner string, m *spec.Manifest) bool {
	return !m.IsPrivate() || AdmitsPrivate(id, owner, m.Access)
}

// AdmitsPrivate reports whether id may reach a private solution of owner
// open to access: its owner, the admins, and those access names.
func AdmitsPrivate(id Identity, owner string, access spec.Access) bool {
	return id.Manages(owner) || inAccess(id, access)
}

// Lists reports whether the catalog and the API's listings show the
// solution to id: a public one to everyone, an unlisted one to those who
// manage it, a private one to those it admits.
func Lists(id Identity, owner string, m *spec.Manifest) bool {
	switch {
	case m.Listed():
		return true
	case m.IsPrivate():
		return Admits(id, owner, m)
	default:
		return id.Manages(owner)
	}
}

func inAccess(id Identity, a spec.Access) bool {
	if id.Anonymous() {
		return false
	}
	email := strings.ToLower(id.Email)
	if email != "" {
		for _, e := range a.Emails {
			if strings.ToLower(e) == email {
				return true
			}
		}
		// A domain admits only an address the provider verified: anyone
		// can type any address into an unverified profile.
		if _, domain, ok := strings.Cut(email, "@"); ok && id.EmailVerified {
			for _, d := range a.Domains {
				if strings.ToLower(strings.TrimPrefix(d, "@")) == domain {
					return true
				}
			}
		}
	}
	for _, g := range a.Groups {
		if slices.Contains(id.Groups, g) {
			return true
		}
	}
	return false
}
