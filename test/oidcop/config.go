package oidcop

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config says where the provider listens and whom it knows.
type Config struct {
	// Issuer is the issuer URL, http or https, optionally with a path
	// ("http://127.0.0.1:5556/oidc"); the provider serves plain HTTP, so
	// an https issuer needs something in front that ends TLS. Empty means
	// "http://" + the address the listener got.
	Issuer string `yaml:"issuer"`
	// Addr is the TCP address to listen on. Empty means the issuer's host
	// and port, or "127.0.0.1:0" (a free port) when Issuer is empty too.
	Addr string `yaml:"addr"`
	// Clients are the relying parties allowed to sign users in.
	Clients []Client `yaml:"clients"`
	// Users are who can sign in, by username and password.
	Users []User `yaml:"users"`
	// GroupsClaim names the claim that carries a user's groups in ID
	// tokens and userinfo answers. Empty means "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// TokenLifetime is how long ID and access tokens are valid. Zero
	// means one hour.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// Logger receives the provider's own records (logins, refused
	// passwords). Nil discards them. zitadel's op logs its refusals of
	// requests through slog's default logger whatever this says.
	Logger *slog.Logger `yaml:"-"`
}

// Client is a confidential relying party: it authenticates to the token
// endpoint with its secret, by HTTP basic auth or in the form body
// (client_secret_basic or client_secret_post), and must use PKCE with
// S256.
type Client struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
	// RedirectURIs are the only redirect_uri values accepted, compared
	// exactly.
	RedirectURIs []string `yaml:"redirect_uris"`
	// PostLogoutRedirectURIs are the only post_logout_redirect_uri values
	// end_session redirects to, compared exactly.
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
}

// User is someone who can sign in. The username is the subject (sub) of
// the user's tokens.
type User struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Email and EmailVerified (with the email scope), Name (with the
	// profile scope) and Groups (always, in the claim Config.GroupsClaim
	// names) go into ID tokens and userinfo answers.
	Email string `yaml:"email"`
	// EmailUnverified makes email_verified false. Zero means the email
	// is verified.
	EmailUnverified bool     `yaml:"email_unverified"`
	Name            string   `yaml:"name"`
	Groups          []string `yaml:"groups"`
	// Claims are more claims of the user's ID tokens and userinfo
	// answers, such as the one naming the aim provider a person acts for
	// (aim serve --oidc-provider-claim). They may not redefine the
	// standard ones above.
	Claims map[string]any `yaml:"claims"`
}

// LoadConfig reads a configuration file, YAML or JSON (JSON is YAML),
// strictly: an unknown field is an error that names its line.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("oidcop: reading the configuration: %w", err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("oidcop: %s: %w", path, err)
	}
	return cfg, nil
}

// withDefaults returns cfg with its defaults filled in, or why it cannot
// serve.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.TokenLifetime == 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.TokenLifetime < 0 {
		return cfg, fmt.Errorf("oidcop: token lifetime %s is negative", cfg.TokenLifetime)
	}
	if cfg.Issuer != "" {
		u, err := url.Parse(cfg.Issuer)
		if err != nil {
			return cfg, fmt.Errorf("oidcop: issuer: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return cfg, fmt.Errorf("oidcop: issuer %q is not an http or https URL without query or fragment", cfg.Issuer)
		}
		if cfg.Addr == "" {
			cfg.Addr = u.Host
			if u.Port() == "" {
				cfg.Addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
			}
		}
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if len(cfg.Clients) == 0 {
		return cfg, errors.New("oidcop: no clients configured")
	}
	ids := map[string]bool{}
	for _, c := range cfg.Clients {
		if err := c.validate(); err != nil {
			return cfg, err
		}
		if ids[c.ID] {
			return cfg, fmt.Errorf("oidcop: client %q configured twice", c.ID)
		}
		ids[c.ID] = true
	}
	names := map[string]bool{}
	for _, u := range cfg.Users {
		if err := u.validate(); err != nil {
			return cfg, err
		}
		if _, ok := u.Claims[cfg.GroupsClaim]; ok {
			return cfg, fmt.Errorf("oidcop: user %q: claim %q carries the groups; set it through the user's groups", u.Username, cfg.GroupsClaim)
		}
		if names[u.Username] {
			return cfg, fmt.Errorf("oidcop: user %q configured twice", u.Username)
		}
		names[u.Username] = true
	}
	return cfg, nil
}

func (c Client) validate() error {
	switch {
	case c.ID == "":
		return errors.New("oidcop: a client has no id")
	case c.Secret == "":
		return fmt.Errorf("oidcop: client %q has no secret", c.ID)
	case len(c.RedirectURIs) == 0:
		return fmt.Errorf("oidcop: client %q has no redirect URIs", c.ID)
	}
	for _, uris := range [][]string{c.RedirectURIs, c.PostLogoutRedirectURIs} {
		for _, raw := range uris {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
				return fmt.Errorf("oidcop: client %q: %q is not an absolute http or https URL without fragment", c.ID, raw)
			}
		}
	}
	return nil
}

// reservedClaims are the claims User.Claims may not set: the library's,
// and those the provider fills from the user's fields.
var reservedClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "at_hash", "c_hash", "auth_time", "amr", "acr",
	"email", "email_verified", "name", "preferred_username", "groups"}

func (u User) validate() error {
	switch {
	case u.Username == "":
		return errors.New("oidcop: a user has no username")
	case u.Password == "":
		return fmt.Errorf("oidcop: user %q has no password", u.Username)
	}
	for name := range u.Claims {
		if slices.Contains(reservedClaims, name) {
			return fmt.Errorf("oidcop: user %q: claim %q is the provider's own; set it through the user's fields", u.Username, name)
		}
	}
	return nil
}
