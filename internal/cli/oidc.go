package cli

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/server"
	"github.com/aimhub/aim/internal/signin"
)

// oidcSecretEnv holds the OpenID client's secret, so that it never
// appears on a command line (which `ps` shows to every user).
const oidcSecretEnv = "AIM_OIDC_CLIENT_SECRET"

// oidcFlags are aim serve's flags for people signing in by OpenID
// Connect.
type oidcFlags struct {
	fs            *pflag.FlagSet
	issuer        string
	clientID      string
	secretFile    string
	adminGroup    string
	providerClaim string
	lifetime      time.Duration
	publicURL     string
}

func (o *oidcFlags) register(f *pflag.FlagSet) {
	o.fs = f
	f.StringVar(&o.issuer, "oidc-issuer", "", "sign people in by OpenID Connect with this provider (its issuer URL); register aim there as a confidential client "+
		"with redirect URI <apex>/auth/callback and post-logout redirect URI <apex>/. Default none: token holders are admins, everyone else is anonymous")
	f.StringVar(&o.clientID, "oidc-client-id", "", "with --oidc-issuer: aim's client id at the provider")
	f.StringVar(&o.secretFile, "oidc-client-secret-file", "", "with --oidc-issuer: file holding the client's secret (default: $"+oidcSecretEnv+")")
	f.StringVar(&o.adminGroup, "oidc-admin-group", "", "with --oidc-issuer: members of this group (the ID token's groups claim) are admins")
	f.StringVar(&o.providerClaim, "oidc-provider-claim", "", "with --oidc-issuer: the ID token claim naming the aim provider a person acts for "+
		"(an existing provider; else they are a visitor)")
	f.DurationVar(&o.lifetime, "session-lifetime", signin.DefaultSessionLifetime, "with --oidc-issuer: how long a sign-in lasts")
	f.StringVar(&o.publicURL, "public-url", "", "the apex as browsers reach it, e.g. https://aim.example.com behind a proxy that ends TLS "+
		"(default: from --domain, --tls and the listen ports)")
}

// apply checks the sign-in flags against each other and against TLS, and
// sets o's sign-in configuration. getenv reads the environment.
func (o *oidcFlags) apply(opts *server.Options, getenv func(string) string) error {
	if o.publicURL != "" {
		if _, err := signin.ParseApexURL(o.publicURL); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
		opts.PublicURL = o.publicURL
	}
	if o.issuer == "" {
		for _, name := range []string{"oidc-client-id", "oidc-client-secret-file", "oidc-admin-group", "oidc-provider-claim", "session-lifetime"} {
			if o.fs.Changed(name) {
				return fmt.Errorf("--%s is for signing in by OpenID Connect: it needs --oidc-issuer", name)
			}
		}
		return nil
	}
	u, err := url.Parse(o.issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--oidc-issuer %q is not an http(s) URL", o.issuer)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return fmt.Errorf("--oidc-issuer %q: aim sends the client secret and reads ID tokens there, so it must be https (plain http only on loopback)", o.issuer)
	}
	if o.clientID == "" {
		return errors.New("--oidc-issuer needs --oidc-client-id, aim's client id at the provider")
	}
	secret := getenv(oidcSecretEnv)
	switch {
	case o.secretFile != "" && secret != "":
		return fmt.Errorf("the OpenID client secret is both in $%s and in --oidc-client-secret-file; give one", oidcSecretEnv)
	case o.secretFile != "":
		b, err := os.ReadFile(o.secretFile)
		if err != nil {
			return fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return fmt.Errorf("--oidc-client-secret-file %s is empty", o.secretFile)
		}
	case secret == "":
		return fmt.Errorf("--oidc-issuer needs the client's secret, in $%s or in a file named by --oidc-client-secret-file", oidcSecretEnv)
	}
	if o.lifetime < time.Minute {
		return fmt.Errorf("--session-lifetime %s: give a minute or more", o.lifetime)
	}
	if err := secureApex(opts); err != nil {
		return err
	}
	opts.SignIn = signin.Config{Issuer: o.issuer, ClientID: o.clientID, ClientSecret: secret,
		AdminGroup: o.adminGroup, ProviderClaim: o.providerClaim, SessionLifetime: o.lifetime}
	return nil
}

// secureApex refuses sign-in on an apex that browsers reach over plain
// HTTP, other than localhost: they keep __Host- cookies, which are
// Secure, only from secure origins, so no one could stay signed in.
func secureApex(opts *server.Options) error {
	scheme, host := "http", opts.Domain
	if opts.TLS.Mode != "" && opts.TLS.Mode != certs.ModeOff {
		scheme = "https"
	}
	if opts.PublicURL != "" {
		u, _ := url.Parse(opts.PublicURL)
		scheme, host = u.Scheme, u.Hostname()
	}
	if scheme == "https" || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return nil
	}
	return fmt.Errorf("--oidc-issuer needs the apex on HTTPS (browsers keep aim's __Host- session cookies only from secure origins): "+
		"use --tls internal or acme, or --public-url https://%s behind a proxy that ends TLS", host)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
