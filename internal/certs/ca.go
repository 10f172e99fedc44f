package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
)

const (
	caCertFile = "root.crt"
	caKeyFile  = "root.key"

	// caLifetime is long because every client that trusts the CA would
	// have to trust a new one when it ends.
	caLifetime = 10 * 365 * 24 * time.Hour
	// leafLifetime is short because nothing can revoke a leaf; certmagic
	// renews it when a third of it remains.
	leafLifetime = 7 * 24 * time.Hour
)

// authority is the internal CA: an ECDSA P-256 root kept in a directory,
// signing leaf certificates directly. It is certmagic's Issuer in
// internal mode.
type authority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	// issuerKey names the CA's certificates in certmagic's storage; it
	// carries the root's fingerprint so that leaves of a replaced CA are
	// never loaded and served.
	issuerKey string
	now       func() time.Time
}

var _ certmagic.Issuer = (*authority)(nil)

// loadOrCreateAuthority loads the CA in dir, or creates one there if the
// directory holds neither file. A CA that is half there, unreadable,
// expired or not for domain is an error: replacing it silently would
// break every client that trusts it.
func loadOrCreateAuthority(dir, domain string, log *slog.Logger) (*authority, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		a, err := createAuthority(dir, domain)
		if err != nil {
			return nil, err
		}
		log.Info("created the internal CA; clients must trust its certificate", "cert", certPath)
		return a, nil
	case certErr != nil:
		return nil, fmt.Errorf("tls: reading the internal CA's certificate: %w", certErr)
	case keyErr != nil:
		return nil, fmt.Errorf("tls: reading the internal CA's key: %w", keyErr)
	}
	a, err := parseAuthority(certPEM, keyPEM, certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if err := a.check(domain, certPath); err != nil {
		return nil, err
	}
	return a, nil
}

func parseAuthority(certPEM, keyPEM []byte, certPath, keyPath string) (*authority, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("tls: %s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tls: parsing %s: %w", certPath, err)
	}
	block, _ = pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("tls: %s holds no PKCS #8 private key (BEGIN PRIVATE KEY)", keyPath)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("tls: parsing %s: %w", keyPath, err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("tls: %s holds a %T, which cannot sign", keyPath, k)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("tls: the key in %s does not belong to the certificate in %s", keyPath, certPath)
	}
	sum := sha256.Sum256(cert.Raw)
	return &authority{
		cert:      cert,
		certPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
		key:       key,
		issuerKey: "aim-internal-" + hex.EncodeToString(sum[:6]),
		now:       time.Now,
	}, nil
}

// check refuses a CA that cannot sign for domain now.
func (a *authority) check(domain, certPath string) error {
	if !a.cert.IsCA || a.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("tls: %s is not a CA certificate", certPath)
	}
	if now := a.now(); now.Add(leafLifetime).After(a.cert.NotAfter) {
		return fmt.Errorf("tls: the internal CA in %s expires %s; move its directory away to create a new one, and have clients trust that",
			certPath, a.cert.NotAfter.Format(time.DateOnly))
	}
	if len(a.cert.PermittedDNSDomains) > 0 && !slices.Contains(a.cert.PermittedDNSDomains, domain) {
		return fmt.Errorf("tls: the internal CA in %s may sign only for %v, not %s; move its directory away to create a new one for %s",
			certPath, a.cert.PermittedDNSDomains, domain, domain)
	}
	return nil
}

func createAuthority(dir, domain string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: generating the internal CA's key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			Organization: []string{"aim"},
			CommonName:   fmt.Sprintf("aim internal CA for %s (%s)", domain, now.UTC().Format(time.DateOnly)),
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		// Clients install this root; constraining it to the domain means
		// its key, if stolen, cannot impersonate anyone else's sites.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{domain},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tls: signing the internal CA's certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tls: encoding the internal CA's key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: creating %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a certificate without its key is refused at the
	// next start, a key without its certificate too, but no client can
	// have trusted a certificate that was never written.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return parseAuthority(certPEM, keyPEM, certPath, keyPath)
}

// Issue signs a leaf for the CSR's names. certmagic calls it only for
// names decide allowed.
func (a *authority) Issue(_ context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("internal CA: bad CSR signature: %w", err)
	}
	if len(csr.DNSNames) == 0 {
		return nil, errors.New("internal CA: the CSR names no DNS names")
	}
	if len(csr.IPAddresses) > 0 || len(csr.URIs) > 0 || len(csr.EmailAddresses) > 0 {
		return nil, errors.New("internal CA: only DNS names are signed")
	}
	now := a.now()
	notAfter := now.Add(leafLifetime)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: csr.DNSNames[0]},
		DNSNames:              csr.DNSNames,
		NotBefore:             now.Add(-5 * time.Minute), // clients with a slightly slow clock
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, csr.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("internal CA: signing for %v: %w", csr.DNSNames, err)
	}
	return &certmagic.IssuedCertificate{Certificate: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// IssuerKey names this CA's certificates in storage.
func (a *authority) IssuerKey() string { return a.issuerKey }

func randomSerial() *big.Int {
	// 128 random bits, as CAs must use at least 64.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// writeFileAtomic writes a file that is never seen half written.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("tls: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("tls: writing %s: %w", path, err)
	}
	return nil
}
