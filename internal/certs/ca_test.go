package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCreateAuthority(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := loadOrCreateAuthority(dir, "aim.test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	c := a.cert
	if !c.IsCA || !c.MaxPathLenZero || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, MaxPathLenZero %v, KeyUsage %v", c.IsCA, c.MaxPathLenZero, c.KeyUsage)
	}
	if _, ok := c.PublicKey.(*ecdsa.PublicKey); !ok {
		t.Errorf("CA key is %T, want ECDSA", c.PublicKey)
	}
	if !slices.Equal(c.PermittedDNSDomains, []string{"aim.test"}) {
		t.Errorf("CA permitted domains %v, want [aim.test]", c.PermittedDNSDomains)
	}
	for file, want := range map[string]os.FileMode{"root.key": 0o600, "root.crt": 0o644, ".": 0o700} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", file, fi.Mode().Perm(), want)
		}
	}

	// The name constraint holds: a leaf for another domain does not verify.
	roots := x509.NewCertPool()
	roots.AddCert(a.cert)
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"demo.aim.test", true}, {"aim.test", true}, {"example.com", false}} {
		leaf := issueFor(t, a, tc.name)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.name})
		if (err == nil) != tc.ok {
			t.Errorf("leaf for %s: verify error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

func issueFor(t *testing.T, a *authority, name string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	ic, err := a.Issue(t.Context(), csr)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(ic.Certificate)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// TestLoadAuthorityRefuses: a CA that cannot be used is an error naming
// the file, never silently replaced (clients trust the old one).
func TestLoadAuthorityRefuses(t *testing.T) {
	good := t.TempDir()
	if _, err := loadOrCreateAuthority(good, "aim.test", testLogger(t)); err != nil {
		t.Fatal(err)
	}
	goodCert, _ := os.ReadFile(filepath.Join(good, "root.crt"))
	goodKey, _ := os.ReadFile(filepath.Join(good, "root.key"))
	other := t.TempDir()
	if _, err := loadOrCreateAuthority(other, "aim.test", testLogger(t)); err != nil {
		t.Fatal(err)
	}
	otherKey, _ := os.ReadFile(filepath.Join(other, "root.key"))

	for _, tc := range []struct {
		name    string
		files   map[string][]byte // nil content: not written
		domain  string
		wantErr string // after the directory
	}{
		{"key missing", map[string][]byte{"root.crt": goodCert}, "aim.test",
			"tls: reading the internal CA's key: open DIR/root.key: no such file or directory"},
		{"certificate missing", map[string][]byte{"root.key": goodKey}, "aim.test",
			"tls: reading the internal CA's certificate: open DIR/root.crt: no such file or directory"},
		{"certificate not PEM", map[string][]byte{"root.crt": []byte("hello"), "root.key": goodKey}, "aim.test",
			"tls: DIR/root.crt holds no PEM certificate"},
		{"key not PKCS 8", map[string][]byte{"root.crt": goodCert, "root.key": []byte("-----BEGIN EC PRIVATE KEY-----\nAA==\n-----END EC PRIVATE KEY-----\n")}, "aim.test",
			"tls: DIR/root.key holds no PKCS #8 private key (BEGIN PRIVATE KEY)"},
		{"key of another CA", map[string][]byte{"root.crt": goodCert, "root.key": otherKey}, "aim.test",
			"tls: the key in DIR/root.key does not belong to the certificate in DIR/root.crt"},
		{"another domain", map[string][]byte{"root.crt": goodCert, "root.key": goodKey}, "example.com",
			"tls: the internal CA in DIR/root.crt may sign only for [aim.test], not example.com; move its directory away to create a new one for example.com"},
		{"expiring", expiringCA(t), "aim.test",
			"tls: the internal CA in DIR/root.crt expires DATE; move its directory away to create a new one, and have clients trust that"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := loadOrCreateAuthority(dir, tc.domain, testLogger(t))
			want := strings.ReplaceAll(tc.wantErr, "DIR", dir)
			want = strings.ReplaceAll(want, "DATE", time.Now().UTC().Add(24*time.Hour).Format(time.DateOnly))
			if errString(err) != want {
				t.Errorf("load: %v\nwant: %s", err, want)
			}
		})
	}

	unreadable := t.TempDir()
	if err := os.WriteFile(filepath.Join(unreadable, "root.crt"), goodCert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(unreadable, "root.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateAuthority(unreadable, "aim.test", testLogger(t)); err == nil || !strings.Contains(err.Error(), "reading the internal CA's key") {
		t.Errorf("a key that cannot be read: %v; want an error reading it", err)
	}
}

// expiringCA is a CA that ends in a day, too soon to sign a week's leaf.
func expiringCA(t *testing.T) map[string][]byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "expiring"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return map[string][]byte{
		"root.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"root.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
}
