package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/dnsupdate"
)

// TestACMEDNSFlags checks aim serve's DNS-01 flags together: what each
// combination puts in the TLS configuration, and the error for each
// wrong one.
func TestACMEDNSFlags(t *testing.T) {
	const secret = "k3JkL0v2bXlkbnNzZWNyZXQtZm9yLWFpbS10ZXN0cw=="
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rfc2136 := []string{"--tls", "acme", "--acme-dns", "rfc2136", "--acme-dns-server", "ns1.example.com", "--acme-dns-tsig-key", "aim-acme"}

	for _, tc := range []struct {
		name      string
		args      []string
		env       string // $AIM_ACME_DNS_TSIG_SECRET
		err       string // the error wanted; "" for none
		provider  bool   // whether DNS01 is set
		resolvers []string
	}{
		{name: "none", args: []string{"--tls", "acme"}},
		{name: "secret from the environment", args: rfc2136, env: secret, provider: true},
		{name: "secret from a file", args: append(slices.Clone(rfc2136), "--acme-dns-tsig-secret-file", secretFile), provider: true},
		{
			name:     "resolvers",
			args:     append(slices.Clone(rfc2136), "--acme-dns-resolvers", "127.0.0.1:5353,10.0.0.1"),
			env:      secret,
			provider: true, resolvers: []string{"127.0.0.1:5353", "10.0.0.1"},
		},
		{name: "provider without acme", args: []string{"--tls", "internal", "--acme-dns", "rfc2136"}, err: "--acme-dns needs --tls acme"},
		{name: "provider without TLS", args: []string{"--acme-dns", "rfc2136"}, err: "--acme-dns needs --tls acme"},
		{name: "unknown provider", args: []string{"--tls", "acme", "--acme-dns", "cloudflare"}, err: `--acme-dns "cloudflare": the one provider is rfc2136`},
		{name: "server without provider", args: []string{"--tls", "acme", "--acme-dns-server", "ns1"}, err: "--acme-dns-server is for DNS-01: it needs --acme-dns rfc2136"},
		{name: "resolvers without provider", args: []string{"--acme-dns-resolvers", "1.1.1.1"}, err: "--acme-dns-resolvers is for DNS-01: it needs --acme-dns rfc2136"},
		{name: "no server", args: []string{"--tls", "acme", "--acme-dns", "rfc2136", "--acme-dns-tsig-key", "k"}, env: secret, err: "--acme-dns rfc2136 needs --acme-dns-server"},
		{name: "no key", args: []string{"--tls", "acme", "--acme-dns", "rfc2136", "--acme-dns-server", "ns1"}, env: secret, err: "--acme-dns rfc2136 needs --acme-dns-tsig-key"},
		{name: "no secret", args: rfc2136, err: "--acme-dns rfc2136 needs the TSIG secret, in $AIM_ACME_DNS_TSIG_SECRET or in a file named by --acme-dns-tsig-secret-file"},
		{name: "two secrets", args: append(slices.Clone(rfc2136), "--acme-dns-tsig-secret-file", secretFile), env: secret, err: "the TSIG secret is both in $AIM_ACME_DNS_TSIG_SECRET and in --acme-dns-tsig-secret-file; give one"},
		{name: "missing secret file", args: append(slices.Clone(rfc2136), "--acme-dns-tsig-secret-file", filepath.Join(dir, "nope")), err: "--acme-dns-tsig-secret-file: open " + filepath.Join(dir, "nope")},
		{name: "empty secret file", args: append(slices.Clone(rfc2136), "--acme-dns-tsig-secret-file", emptyFile), err: "--acme-dns-tsig-secret-file " + emptyFile + " is empty"},
		{name: "secret not base64", args: rfc2136, env: "hunter2!", err: "--acme-dns rfc2136: dnsupdate: the secret of TSIG key aim-acme. is not base64"},
		{name: "unknown algorithm", args: append(slices.Clone(rfc2136), "--acme-dns-tsig-algorithm", "hmac-md5"), env: secret, err: `--acme-dns rfc2136: dnsupdate: TSIG algorithm "hmac-md5": want hmac-sha256`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfg certs.Config
			var a acmeDNSFlags
			f := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			f.Var(&tlsModeFlag{&cfg.Mode}, "tls", "")
			a.register(f)
			if err := f.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			getenv := func(k string) string {
				if k == tsigSecretEnv {
					return tc.env
				}
				return ""
			}
			err := a.apply(&cfg, getenv)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("apply: %v", err)
			case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
				t.Fatalf("apply: %v, want an error starting %q", err, tc.err)
			case tc.err != "":
				return
			}
			if _, ok := cfg.DNS01.(*dnsupdate.Provider); ok != tc.provider {
				t.Errorf("DNS01 = %#v, want a provider: %v", cfg.DNS01, tc.provider)
			}
			if !slices.Equal(cfg.DNSResolvers, tc.resolvers) {
				t.Errorf("DNSResolvers = %q, want %q", cfg.DNSResolvers, tc.resolvers)
			}
		})
	}
}
