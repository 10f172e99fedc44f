// Package pebble runs Let's Encrypt's pebble, a real ACME server, for
// tests. The binary is built from the Go module proxy on first use and
// kept in the user's cache directory, keyed by version; a DNS server in
// the test process answers pebble's lookups, so its validation requests
// reach the test's own listeners on 127.0.0.1.
package pebble

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Version is the pebble release the tests run.
const Version = "v2.10.3"

const module = "github.com/letsencrypt/pebble/v2"

// Options say where pebble's validation requests go.
type Options struct {
	// Zone is the DNS zone the test's names live in, e.g. "aim.test".
	// The DNS server answers 127.0.0.1 for every A query and serves the
	// zone's SOA and the TXT records Server.DNS is given.
	Zone string
	// HTTPPort is where pebble sends HTTP-01 validation requests (on
	// 127.0.0.1). Zero leaves pebble's default, 5002.
	HTTPPort int
	// TLSPort is where pebble sends TLS-ALPN-01 validation handshakes
	// (on 127.0.0.1). Zero leaves pebble's default, 5001.
	TLSPort int
	// TSIGKeys let the DNS server take RFC 2136 dynamic updates of TXT
	// records signed with one of them: fully qualified key name ->
	// base64 secret. Nil refuses every update.
	TSIGKeys map[string]string
}

// Server is a running pebble.
type Server struct {
	// DirectoryURL is the ACME directory.
	DirectoryURL string
	// Roots trusts pebble's own HTTPS endpoints (the ACME API): give it
	// to the ACME client.
	Roots *x509.CertPool
	// RootsFile is the same trust as a PEM file, for a client in another
	// process (aim serve --acme-ca-root).
	RootsFile string
	// IssuerRoots trusts the certificates pebble issues: its root,
	// fetched from the management API's /roots/0 (pebble makes a new
	// one on every start).
	IssuerRoots *x509.CertPool
	// DNS is the DNS server pebble resolves names with; it is also a
	// libdns provider, for DNS-01, and takes dynamic updates signed with
	// Options.TSIGKeys.
	DNS *DNS
}

// Start builds pebble if needed, starts it and stops it when t ends.
// Pebble's random validation delay and nonce rejections are turned off,
// since they only slow tests down; validation itself is real.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()

	dns, err := StartDNS(o.Zone, o.TSIGKeys)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(dns.Close)

	certFile, keyFile, roots, err := writeServerCert(dir)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	acmeAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	httpPort, tlsPort := o.HTTPPort, o.TLSPort
	if httpPort == 0 {
		httpPort = 5002
	}
	if tlsPort == 0 {
		tlsPort = 5001
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           acmeAddr,
		"managementListenAddress": mgmtAddr,
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"keyAlgorithm":            "ecdsa",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
	}}
	cfgJSON, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(cfgFile, cfgJSON, 0o600); err != nil {
		t.Fatalf("pebble: writing its config: %v", err)
	}

	out := &syncBuffer{}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", dns.Addr())
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("pebble: starting %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("pebble's output:\n%s", out.String())
		}
	})

	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	}
	s := &Server{DirectoryURL: "https://" + acmeAddr + "/dir", Roots: roots, RootsFile: certFile, DNS: dns}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(s.DirectoryURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("pebble exited before answering:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble's directory %s did not answer within 20s: %v\n%s", s.DirectoryURL, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	rootURL := "https://" + mgmtAddr + "/roots/0"
	resp, err := client.Get(rootURL)
	if err != nil {
		t.Fatalf("pebble: fetching its issuing root: %v", err)
	}
	defer resp.Body.Close()
	rootPEM, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble: fetching %s: %s %v", rootURL, resp.Status, err)
	}
	s.IssuerRoots = x509.NewCertPool()
	if !s.IssuerRoots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble: %s is not a PEM certificate:\n%s", rootURL, rootPEM)
	}
	return s
}

var build struct {
	sync.Mutex
	path string
}

// Binary returns the path of the pebble binary, building it with
// `go install` from the module proxy into the user's cache directory
// (aim/bin/pebble-<Version>/) the first time.
func Binary(t testing.TB) string {
	t.Helper()
	build.Lock()
	defer build.Unlock()
	if build.path != "" {
		return build.path
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("pebble: finding the cache directory: %v", err)
	}
	dir := filepath.Join(cache, "aim", "bin", "pebble-"+Version)
	bin := filepath.Join(dir, "pebble")
	if _, err := os.Stat(bin); err == nil {
		build.path = bin
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("pebble: %v", err)
	}
	// Build into a fresh directory and rename it into place, so that
	// test processes building at once never see a half-written binary.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "pebble-build-")
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	defer os.RemoveAll(tmp)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("pebble: building it needs the go command: %v", err)
	}
	start := time.Now()
	cmd := exec.Command(goBin, "install", module+"/cmd/pebble@"+Version)
	// GOFLAGS is cleared: flags meant for aim's module (-mod=...) break
	// an install of another module at a version.
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pebble: go install %s/cmd/pebble@%s: %v\n%s", module, Version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(bin); statErr != nil {
			t.Fatalf("pebble: moving the built binary into %s: %v", dir, err)
		}
		// Another test process built it first.
	}
	t.Logf("built pebble %s in %s into %s", Version, time.Since(start).Round(time.Millisecond), dir)
	build.path = bin
	return bin
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on
// now. Pebble takes addresses, not listeners, so another process could
// take the port first; the tests would then fail at pebble's start,
// loudly, not pass wrongly.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pebble: finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeServerCert writes a self-signed certificate for pebble's HTTPS
// endpoints and returns a pool that trusts it.
func writeServerCert(dir string) (certFile, keyFile string, roots *x509.CertPool, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pebble test endpoint"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", nil, fmt.Errorf("making pebble's endpoint certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", nil, err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots, nil
}

// syncBuffer collects a process's output written from its pipes'
// goroutines while the test may read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
