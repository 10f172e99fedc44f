// Package certs gives aim's gateway its TLS certificates, in one of
// three modes: none; an internal CA that aim keeps in its data directory
// and that signs a certificate per server name on demand; or ACME
// (Let's Encrypt or any other directory) through certmagic, either on
// demand per solution or as one wildcard certificate through DNS-01.
//
// Certificates are issued only for the apex and for names one label
// under it that Config.Allow accepts, so a client cannot make aim ask a
// CA for arbitrary names. In both on-demand modes certmagic does the
// bookkeeping: storage under Dir/certs (or Config.Storage, shared by
// several processes, e.g. Secrets in a cluster), one issuance per name
// however many handshakes wait for it, and renewal in the background.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// Mode says where certificates come from.
type Mode string

const (
	// ModeOff serves plain HTTP.
	ModeOff Mode = "off"
	// ModeInternal issues certificates from a CA aim creates in Dir/ca.
	ModeInternal Mode = "internal"
	// ModeACME obtains certificates from an ACME CA.
	ModeACME Mode = "acme"
)

// ParseMode reads a --tls value.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", ModeOff:
		return ModeOff, nil
	case ModeInternal, ModeACME:
		return m, nil
	}
	return "", fmt.Errorf("unknown TLS mode %q: want off, internal or acme", s)
}

// ErrNotAllowed is returned (wrapped) for a server name that gets no
// certificate: neither the apex nor a name Allow accepts.
var ErrNotAllowed = errors.New("no certificate for this name")

// Config configures a Manager. Zero values take the defaults named.
type Config struct {
	// Mode is off, internal or acme. Empty means off.
	Mode Mode
	// Dir is aim's data directory; certificates are kept in Dir/certs
	// and the internal CA in Dir/ca. Required unless Mode is off, or is
	// acme with Storage set.
	Dir string
	// Storage keeps the certificates, their keys, the ACME account and
	// challenges, and locks each issuance, for every Manager that shares
	// it (the gateway's replicas in a cluster: Secrets and Leases, see
	// internal/kube/certstore). Nil means a certmagic.FileStorage in
	// Dir/certs, for one process.
	Storage certmagic.Storage
	// Domain is the apex; solutions are at <name>.<Domain>. Required
	// unless Mode is off.
	Domain string
	// Allow says whether the solution <name>.<Domain> may have a
	// certificate, in the on-demand modes: nil means it may, a non-nil
	// error says why not (usually: no such solution). It is asked only
	// for names exactly one label under Domain, before anything is
	// loaded or issued; the apex is always allowed. Nil refuses every
	// subdomain.
	Allow func(ctx context.Context, name string) error

	// ACMECA is the ACME directory URL. Empty means Let's Encrypt's
	// production directory. Using it means agreeing to the CA's terms.
	ACMECA string
	// ACMEEmail is the ACME account's contact. Empty means none.
	ACMEEmail string
	// ACMERoots are the roots trusted for the ACME directory's HTTPS,
	// for a private CA. Nil means the system's.
	ACMERoots *x509.CertPool
	// DNS01, when set, obtains one certificate for Domain and *.Domain
	// through the DNS-01 challenge with this libdns provider, at start
	// and on renewal, instead of one per solution on demand; Allow is
	// then not asked.
	DNS01 certmagic.DNSProvider
	// DNSResolvers are the resolvers ("host:port") used to find
	// Domain's zone and to see the DNS-01 records appear. Empty means
	// the system's, and the zone's authoritative servers.
	DNSResolvers []string

	// HTTPPort and HTTPSPort are the ports clients reach aim on, used in
	// redirects and where certmagic expects the ACME challenges to
	// arrive. Zero means 80 and 443.
	HTTPPort, HTTPSPort int
	// HSTS is the max-age of the Strict-Transport-Security header on
	// HTTPS responses. Zero sends no header.
	HSTS time.Duration
	// HSTSIncludeSubdomains adds includeSubDomains to that header.
	HSTSIncludeSubdomains bool

	// Logger receives the manager's and certmagic's logs. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// Manager hands out certificates during TLS handshakes. A Manager for
// ModeOff is valid: it has no TLS config and its handlers pass through.
type Manager struct {
	cfg   Config
	magic *certmagic.Config     // nil when off
	acme  *certmagic.ACMEIssuer // nil unless acme
	ca    *authority            // nil unless internal
	log   *slog.Logger

	// obtaining counts issuances started (certmagic's cert_obtaining
	// events), so tests can tell that a refused name never reached a CA.
	obtaining atomic.Int64
}

// New checks cfg, loads or creates what the mode needs (the internal
// CA; the wildcard certificate is obtained in the background) and
// returns a Manager. Background work (renewals) stops when ctx ends.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With(slog.String("tls", string(cfg.Mode)))}
	if cfg.Mode == ModeOff {
		return m, nil
	}

	if cfg.Mode == ModeInternal {
		if m.ca, err = loadOrCreateAuthority(filepath.Join(cfg.Dir, "ca"), cfg.Domain, m.log); err != nil {
			return nil, err
		}
	}

	zl := zap.New(newSlogCore(m.log.Handler()))
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	storage := cfg.Storage
	if storage == nil {
		storage = &certmagic.FileStorage{Path: filepath.Join(cfg.Dir, "certs")}
	}
	magic = certmagic.New(cache, certmagic.Config{
		Storage: storage,
		Logger:  zl,
		OnEvent: m.onEvent,
	})
	m.magic = magic
	onDemand := &certmagic.OnDemandConfig{DecisionFunc: m.decide}
	switch cfg.Mode {
	case ModeInternal:
		magic.Issuers = []certmagic.Issuer{m.ca}
		magic.OnDemand = onDemand
	case ModeACME:
		tmpl := certmagic.ACMEIssuer{
			CA:             cfg.ACMECA,
			Email:          cfg.ACMEEmail,
			Agreed:         true,
			TrustedRoots:   cfg.ACMERoots,
			AltHTTPPort:    cfg.HTTPPort,
			AltTLSALPNPort: cfg.HTTPSPort,
			Logger:         zl,
		}
		if cfg.DNS01 != nil {
			tmpl.DNS01Solver = &certmagic.DNS01Solver{DNSManager: certmagic.DNSManager{
				DNSProvider: cfg.DNS01,
				Resolvers:   cfg.DNSResolvers,
				Logger:      zl,
			}}
		} else {
			magic.OnDemand = onDemand
		}
		m.acme = certmagic.NewACMEIssuer(magic, tmpl)
		magic.Issuers = []certmagic.Issuer{m.acme}
	}
	if cfg.DNS01 != nil {
		// Async: a DNS provider that is slow or misconfigured must not
		// keep aim from serving plain HTTP and the API; certmagic
		// retries with back-off and logs each failure.
		if err := magic.ManageAsync(ctx, []string{cfg.Domain, "*." + cfg.Domain}); err != nil {
			cache.Stop()
			return nil, fmt.Errorf("tls: managing the certificates for %s and *.%s: %w", cfg.Domain, cfg.Domain, err)
		}
	}
	go func() {
		<-ctx.Done()
		cache.Stop()
	}()
	go m.cleanEvery(ctx, cleanDelay, cleanInterval)
	return m, nil
}

const (
	// cleanDelay is how long after start storage is first cleaned, and
	// cleanInterval how often after that (the Managers sharing storage
	// clean it once per interval between them).
	cleanDelay    = 10 * time.Minute
	cleanInterval = 24 * time.Hour
	// expiredGrace is how long an expired certificate stays in storage.
	// On-demand certificates are renewed by the handshakes that need
	// them, so one that expires is no longer asked for, usually a
	// removed solution's.
	expiredGrace = 7 * 24 * time.Hour
)

// cleanEvery removes from storage, after delay and then every interval,
// the certificates expired for longer than expiredGrace and old OCSP
// staples; certmagic does this only when asked (Caddy asks).
func (m *Manager) cleanEvery(ctx context.Context, delay, interval time.Duration) {
	t := time.NewTimer(delay)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.clean(ctx, interval); err != nil {
			m.log.Warn("cleaning certificate storage", "err", err)
		}
		t.Reset(interval)
	}
}

// clean cleans storage unless a Manager sharing it did within interval.
func (m *Manager) clean(ctx context.Context, interval time.Duration) error {
	host, _ := os.Hostname()
	return certmagic.CleanStorage(ctx, m.magic.Storage, certmagic.CleanStorageOptions{
		Logger:                 m.magic.Logger,
		InstanceID:             host,
		Interval:               interval - time.Minute,
		OCSPStaples:            true,
		ExpiredCerts:           true,
		ExpiredCertGracePeriod: expiredGrace,
	})
}

func (c Config) withDefaults() (Config, error) {
	if c.Mode == "" {
		c.Mode = ModeOff
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.HTTPPort == 0 {
		c.HTTPPort = 80
	}
	if c.HTTPSPort == 0 {
		c.HTTPSPort = 443
	}
	if c.HSTS < 0 {
		return c, fmt.Errorf("tls: HSTS max-age %s is negative", c.HSTS)
	}
	switch c.Mode {
	case ModeOff:
		return c, nil
	case ModeInternal, ModeACME:
	default:
		return c, fmt.Errorf("tls: unknown mode %q: want off, internal or acme", c.Mode)
	}
	c.Domain = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.Domain)), ".")
	if c.Domain == "" {
		return c, fmt.Errorf("tls: mode %s needs a domain (solutions are served at <name>.<domain>)", c.Mode)
	}
	if !certmagic.SubjectQualifiesForCert(c.Domain) || strings.Contains(c.Domain, "*") || certmagic.SubjectIsIP(c.Domain) {
		return c, fmt.Errorf("tls: domain %q cannot be named in a certificate", c.Domain)
	}
	if c.Dir == "" && (c.Mode != ModeACME || c.Storage == nil) {
		return c, fmt.Errorf("tls: mode %s needs a data directory for its certificates", c.Mode)
	}
	if c.Mode == ModeACME {
		if c.ACMECA == "" {
			c.ACMECA = certmagic.LetsEncryptProductionCA
		}
		letsEncrypt := c.ACMECA == certmagic.LetsEncryptProductionCA || c.ACMECA == certmagic.LetsEncryptStagingCA
		if letsEncrypt && !certmagic.SubjectQualifiesForPublicCert(c.Domain) {
			return c, fmt.Errorf("tls: Let's Encrypt cannot issue for %q, which is internal; use --tls internal", c.Domain)
		}
	} else if c.ACMECA != "" || c.DNS01 != nil || c.ACMEEmail != "" {
		return c, fmt.Errorf("tls: ACME settings (CA, email, DNS provider) need mode acme, not %s", c.Mode)
	}
	return c, nil
}

// Enabled reports whether TLS is on.
func (m *Manager) Enabled() bool { return m.cfg.Mode != ModeOff }

// TLSConfig is the configuration for the HTTPS listener: certificates
// chosen by SNI, HTTP/2 and HTTP/1.1 offered, and in ACME mode the
// TLS-ALPN-01 challenge answered. Nil when TLS is off.
func (m *Manager) TLSConfig() *tls.Config {
	if m.magic == nil {
		return nil
	}
	tc := m.magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	tc.NextProtos = []string{"h2", "http/1.1"}
	if m.acme != nil && m.cfg.DNS01 == nil {
		tc.NextProtos = append(tc.NextProtos, acmez.ACMETLS1Protocol)
		// A TLS-ALPN-01 handshake goes past the on-demand gate to a
		// storage lookup (a Secret read in a cluster) for whatever name
		// it sends; one for a name aim would never ask for ends here.
		get := tc.GetCertificate
		tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
				if err := m.decide(hello.Context(), hello.ServerName); err != nil {
					return nil, err
				}
			}
			return get(hello)
		}
	}
	return tc
}

// CACertPEM is the internal CA's certificate, for clients to trust. Nil
// unless the mode is internal.
func (m *Manager) CACertPEM() []byte {
	if m.ca == nil {
		return nil
	}
	return append([]byte(nil), m.ca.certPEM...)
}

// decide is certmagic's on-demand gate. It runs during the handshake
// before storage or the CA is touched, so a refused name costs nothing;
// the challenge paths, which certmagic does not gate, call it too
// (HandleHTTPChallenge, TLSConfig).
func (m *Manager) decide(ctx context.Context, name string) error {
	name = strings.ToLower(name)
	if name == m.cfg.Domain {
		return nil
	}
	sol, ok := strings.CutSuffix(name, "."+m.cfg.Domain)
	if !ok || sol == "" || strings.Contains(sol, ".") {
		return fmt.Errorf("%s: %w: not %s or one label under it", name, ErrNotAllowed, m.cfg.Domain)
	}
	if m.cfg.Allow == nil {
		return fmt.Errorf("%s: %w: no solution may have one", name, ErrNotAllowed)
	}
	if err := m.cfg.Allow(ctx, sol); err != nil {
		return fmt.Errorf("%s: %w: %w", name, ErrNotAllowed, err)
	}
	return nil
}

func (m *Manager) onEvent(_ context.Context, event string, _ map[string]any) error {
	if event == "cert_obtaining" {
		m.obtaining.Add(1)
	}
	return nil
}
