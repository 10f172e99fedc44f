package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/dnsupdate"
)

// tsigSecretEnv holds the TSIG secret for --acme-dns rfc2136, so that it
// never appears on a command line (which `ps` shows to every user).
const tsigSecretEnv = "AIM_ACME_DNS_TSIG_SECRET"

// acmeDNSFlags are aim serve's flags for one wildcard certificate
// through the ACME DNS-01 challenge.
type acmeDNSFlags struct {
	provider   string
	server     string
	zone       string
	key        string
	algorithm  string
	secretFile string
	resolvers  []string
}

func (a *acmeDNSFlags) register(f *pflag.FlagSet) {
	f.StringVar(&a.provider, "acme-dns", "", "with --tls acme: one certificate for the domain and *.domain through the DNS-01 challenge, "+
		"its TXT records set by this provider: rfc2136 (dynamic updates signed with TSIG; BIND, Knot, PowerDNS and others take them). "+
		"Default none: a certificate per solution, on demand")
	f.StringVar(&a.server, "acme-dns-server", "", "with --acme-dns rfc2136: host[:port] of the DNS server that takes updates for the zone, usually its primary (port 53 by default)")
	f.StringVar(&a.zone, "acme-dns-zone", "", "with --acme-dns rfc2136: the zone to update (default: found from the domain's SOA)")
	f.StringVar(&a.key, "acme-dns-tsig-key", "", "with --acme-dns rfc2136: name of the TSIG key the server accepts updates signed with")
	f.StringVar(&a.algorithm, "acme-dns-tsig-algorithm", "hmac-sha256", "with --acme-dns rfc2136: the TSIG key's algorithm: hmac-sha256, hmac-sha224, hmac-sha384, hmac-sha512 or hmac-sha1")
	f.StringVar(&a.secretFile, "acme-dns-tsig-secret-file", "", "with --acme-dns rfc2136: file holding the TSIG key's base64 secret (default: $"+tsigSecretEnv+")")
	f.StringSliceVar(&a.resolvers, "acme-dns-resolvers", nil, "with --acme-dns: comma-separated resolvers (host[:port]) to find the zone and see the challenge records appear "+
		"(default: the system's, and the zone's own servers)")
}

// apply checks the DNS-01 flags against each other and against the TLS
// mode, and sets tc's DNS provider and resolvers when --acme-dns is
// given. getenv reads the environment.
func (a *acmeDNSFlags) apply(tc *certs.Config, getenv func(string) string) error {
	if a.provider == "" {
		for _, f := range []struct{ flag, value string }{
			{"--acme-dns-server", a.server},
			{"--acme-dns-zone", a.zone},
			{"--acme-dns-tsig-key", a.key},
			{"--acme-dns-tsig-secret-file", a.secretFile},
			{"--acme-dns-resolvers", strings.Join(a.resolvers, ",")},
		} {
			if f.value != "" {
				return fmt.Errorf("%s is for DNS-01: it needs --acme-dns rfc2136", f.flag)
			}
		}
		return nil
	}
	if a.provider != "rfc2136" {
		return fmt.Errorf("--acme-dns %q: the one provider is rfc2136", a.provider)
	}
	if tc.Mode != certs.ModeACME {
		return errors.New("--acme-dns needs --tls acme")
	}
	if a.server == "" {
		return errors.New("--acme-dns rfc2136 needs --acme-dns-server, the DNS server that takes updates for the zone")
	}
	if a.key == "" {
		return errors.New("--acme-dns rfc2136 needs --acme-dns-tsig-key, the name of the TSIG key the server accepts")
	}
	secret := getenv(tsigSecretEnv)
	switch {
	case a.secretFile != "" && secret != "":
		return fmt.Errorf("the TSIG secret is both in $%s and in --acme-dns-tsig-secret-file; give one", tsigSecretEnv)
	case a.secretFile != "":
		b, err := os.ReadFile(a.secretFile)
		if err != nil {
			return fmt.Errorf("--acme-dns-tsig-secret-file: %w", err)
		}
		if secret = strings.TrimSpace(string(b)); secret == "" {
			return fmt.Errorf("--acme-dns-tsig-secret-file %s is empty", a.secretFile)
		}
	case secret == "":
		return fmt.Errorf("--acme-dns rfc2136 needs the TSIG secret, in $%s or in a file named by --acme-dns-tsig-secret-file", tsigSecretEnv)
	}
	p, err := dnsupdate.New(dnsupdate.Config{
		Server:    a.server,
		Zone:      a.zone,
		KeyName:   a.key,
		Algorithm: a.algorithm,
		Secret:    secret,
	})
	if err != nil {
		return fmt.Errorf("--acme-dns rfc2136: %w", err)
	}
	tc.DNS01 = p
	tc.DNSResolvers = a.resolvers
	return nil
}
