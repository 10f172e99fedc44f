package kubegateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRedirectToHTTPS(t *testing.T) {
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	h := redirectToHTTPS("aim.example.com", plain)
	tests := []struct {
		name, host, path string
		code             int
		location         string
	}{
		{"a solution", "hello.aim.example.com", "/a?b=c", http.StatusPermanentRedirect, "https://hello.aim.example.com/a?b=c"},
		{"the apex, with a port", "AIM.example.com:80", "/", http.StatusPermanentRedirect, "https://aim.example.com/"},
		{"the kubelet's probe by pod IP", "10.244.0.7:8080", "/healthz", 299, ""},
		{"another domain", "example.org", "/", 299, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "http://"+tt.host+tt.path, nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.code || w.Header().Get("Location") != tt.location {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Header().Get("Location"), tt.code, tt.location)
			}
		})
	}
}

// writeCert writes a self-signed certificate for cn and its key.
func writeCert(t *testing.T, dir, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{cn}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A renewed certificate (cert-manager rewrites the mounted Secret) is
// served without a restart.
func TestCertFilesReload(t *testing.T) {
	dir := t.TempDir()
	writeCert(t, dir, "one.example")
	c, err := newCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	c.recheck = 0
	cn := func() string {
		cert, err := c.get(nil)
		if err != nil {
			t.Fatal(err)
		}
		x, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return x.Subject.CommonName
	}
	if got := cn(); got != "one.example" {
		t.Fatalf("serving %s, want one.example", got)
	}
	writeCert(t, dir, "two.example")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "tls.crt"), later, later); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "two.example" {
		t.Errorf("after the renewal serving %s, want two.example", got)
	}
	if _, err := newCertFiles(filepath.Join(dir, "nope.crt"), filepath.Join(dir, "tls.key")); err == nil {
		t.Error("a missing certificate file was accepted")
	}
}
