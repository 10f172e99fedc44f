package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// expiredPEM is a self-signed certificate for name that expired ago.
func expiredPEM(t *testing.T, name string, ago time.Duration) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-ago - 90*24*time.Hour), NotAfter: time.Now().Add(-ago)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// Storage cleaning drops a certificate (and its key and metadata) expired
// for longer than the grace period, keeps the others, and runs once per
// interval among the Managers that share storage.
func TestCleanStorage(t *testing.T) {
	dir := t.TempDir()
	newManager := func() *Manager {
		m, err := New(t.Context(), Config{Mode: ModeInternal, Dir: dir, Domain: "aim.test", Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := newManager(), newManager()
	st := a.magic.Storage
	put := func(name string, ago time.Duration) {
		base := "certificates/aim-internal/" + name + "/" + name
		for _, kv := range []struct {
			key string
			val []byte
		}{{base + ".crt", expiredPEM(t, name, ago)}, {base + ".key", []byte("key")}, {base + ".json", []byte("{}")}} {
			if err := st.Store(t.Context(), kv.key, kv.val); err != nil {
				t.Fatal(err)
			}
		}
	}
	has := func(name string) bool {
		return st.Exists(t.Context(), "certificates/aim-internal/"+name+"/"+name+".key")
	}
	put("gone.aim.test", expiredGrace+time.Hour)
	put("recent.aim.test", time.Hour)
	put("valid.aim.test", -30*24*time.Hour)

	if err := a.clean(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if has("gone.aim.test") {
		t.Error("a certificate expired past the grace period is still stored")
	}
	if !has("recent.aim.test") || !has("valid.aim.test") {
		t.Errorf("cleaning removed a certificate within the grace period (%v) or a valid one (%v)", !has("recent.aim.test"), !has("valid.aim.test"))
	}

	// Another Manager on the same storage, within the interval: no
	// second cleaning.
	put("later.aim.test", expiredGrace+time.Hour)
	if err := b.clean(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	if !has("later.aim.test") {
		t.Error("a second Manager cleaned again within the interval")
	}
}
