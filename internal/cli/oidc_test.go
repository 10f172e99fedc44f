package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/aimhub/aim/internal/server"
	"github.com/aimhub/aim/internal/signin"
)

// TestOIDCFlags checks aim serve's sign-in flags together: what each
// combination puts in the server's options, and the error for each
// wrong one.
func TestOIDCFlags(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "oidc.secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	op := []string{"--oidc-issuer", "https://id.example.com/realms/aim", "--oidc-client-id", "aim", "--tls", "acme", "--domain", "aim.example.com"}
	with := func(more ...string) []string { return append(slices.Clone(op), more...) }
	for _, tc := range []struct {
		name   string
		args   []string
		env    string // $AIM_OIDC_CLIENT_SECRET
		err    string // the error wanted, its start; "" for none
		want   signin.Config
		public string
	}{
		{name: "none", args: nil},
		{name: "none, a public URL", args: []string{"--public-url", "https://aim.example.com/"}, public: "https://aim.example.com/"},
		{name: "secret from the environment", args: op, env: "s3cret",
			want: signin.Config{Issuer: "https://id.example.com/realms/aim", ClientID: "aim", ClientSecret: "s3cret", SessionLifetime: 12 * time.Hour}},
		{name: "everything", args: with("--oidc-client-secret-file", secretFile, "--oidc-admin-group", "aim-admins", "--oidc-provider-claim", "aim_provider", "--session-lifetime", "1h"),
			want: signin.Config{Issuer: "https://id.example.com/realms/aim", ClientID: "aim", ClientSecret: "s3cret", AdminGroup: "aim-admins",
				ProviderClaim: "aim_provider", SessionLifetime: time.Hour}},
		{name: "http on localhost", env: "s",
			args: []string{"--oidc-issuer", "http://127.0.0.1:5556", "--oidc-client-id", "aim"},
			want: signin.Config{Issuer: "http://127.0.0.1:5556", ClientID: "aim", ClientSecret: "s", SessionLifetime: 12 * time.Hour}},
		{name: "behind a proxy that ends TLS", env: "s", public: "https://aim.example.com",
			args: []string{"--oidc-issuer", "https://id.example.com", "--oidc-client-id", "aim", "--domain", "aim.example.com", "--public-url", "https://aim.example.com"},
			want: signin.Config{Issuer: "https://id.example.com", ClientID: "aim", ClientSecret: "s", SessionLifetime: 12 * time.Hour}},
		{name: "a client id alone", args: []string{"--oidc-client-id", "aim"}, err: "--oidc-client-id is for signing in by OpenID Connect: it needs --oidc-issuer"},
		{name: "an admin group alone", args: []string{"--oidc-admin-group", "g"}, err: "--oidc-admin-group is for signing in"},
		{name: "a lifetime alone", args: []string{"--session-lifetime", "1h"}, err: "--session-lifetime is for signing in"},
		{name: "no client id", args: []string{"--oidc-issuer", "https://id.example.com"}, env: "s", err: "--oidc-issuer needs --oidc-client-id"},
		{name: "no secret", args: op, err: "--oidc-issuer needs the client's secret, in $AIM_OIDC_CLIENT_SECRET or in a file named by --oidc-client-secret-file"},
		{name: "two secrets", args: with("--oidc-client-secret-file", secretFile), env: "s", err: "the OpenID client secret is both in"},
		{name: "missing secret file", args: with("--oidc-client-secret-file", filepath.Join(dir, "nope")), err: "--oidc-client-secret-file: open "},
		{name: "empty secret file", args: with("--oidc-client-secret-file", emptyFile), err: "--oidc-client-secret-file " + emptyFile + " is empty"},
		{name: "issuer not a URL", args: []string{"--oidc-issuer", "id.example.com"}, err: `--oidc-issuer "id.example.com" is not an http(s) URL`},
		{name: "issuer on plain http elsewhere", args: []string{"--oidc-issuer", "http://id.example.com"}, err: `--oidc-issuer "http://id.example.com": aim sends the client secret`},
		{name: "a lifetime too short", args: with("--session-lifetime", "10s"), env: "s", err: "--session-lifetime 10s: give a minute or more"},
		{name: "an apex on plain http", env: "s", args: []string{"--oidc-issuer", "https://id.example.com", "--oidc-client-id", "aim", "--domain", "aim.example.com"},
			err: "--oidc-issuer needs the apex on HTTPS"},
		{name: "a public URL on plain http", env: "s", args: with("--public-url", "http://aim.example.com"), err: "--oidc-issuer needs the apex on HTTPS"},
		{name: "a public URL with a path", args: []string{"--public-url", "https://aim.example.com/aim"}, err: "--public-url: the apex URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o server.Options
			var flags oidcFlags
			f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			f.Var(&tlsModeFlag{&o.TLS.Mode}, "tls", "")
			f.StringVar(&o.Domain, "domain", "localhost", "")
			flags.register(f)
			if err := f.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == oidcSecretEnv {
					return tc.env
				}
				return ""
			}
			err := flags.apply(&o, getenv)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Fatalf("apply: %v, want an error starting %q", err, tc.err)
			case tc.err != "":
				return
			}
			if o.SignIn != tc.want || o.PublicURL != tc.public {
				t.Errorf("SignIn = %+v, PublicURL %q; want %+v, %q", o.SignIn, o.PublicURL, tc.want, tc.public)
			}
		})
	}
}
