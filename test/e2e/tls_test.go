package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/test/pebble"
)

// httpsClient dials addr whatever the URL's host, as DNS for the test
// domain would, and trusts only roots.
func httpsClient(addr string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestTLSInternalCA serves a solution over HTTPS with aim's own CA and
// checks it with a client that trusts only that CA.
func TestTLSInternalCA(t *testing.T) {
	httpsAddr := freeAddr(t)
	a := StartAim(t, "--domain", "aim.test", "--tls", "internal", "--https", httpsAddr, "--hsts", "1h")
	a.MustCLI("deploy", "-q", writeSolution(t, "name: calm\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))

	// The CA is downloadable from the apex, which the catalog links.
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get("http://" + a.Addr + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if resp.StatusCode != 200 || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("GET /ca.crt: %d %.200s", resp.StatusCode, caPEM)
	}

	cl := httpsClient(httpsAddr, roots)
	resp, err = cl.Get("https://calm.aim.test:" + port(httpsAddr) + "/whoami")
	if err != nil {
		t.Fatalf("HTTPS to a solution with only aim's CA trusted: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"solution":"calm"`) {
		t.Errorf("HTTPS answer %d %s", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("served %s, want HTTP/2", resp.Proto)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(h, "max-age=3600") {
		t.Errorf("Strict-Transport-Security %q, want max-age=3600", h)
	}
	if !slices.Contains(resp.TLS.PeerCertificates[0].DNSNames, "calm.aim.test") {
		t.Errorf("certificate names %v", resp.TLS.PeerCertificates[0].DNSNames)
	}

	// The apex page over HTTPS links the CA.
	resp, err = cl.Get("https://aim.test:" + port(httpsAddr) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `href="/ca.crt"`) {
		t.Errorf("the catalog does not link the CA certificate")
	}

	// A name that is not a solution's gets no certificate.
	if _, err := cl.Get("https://nope.aim.test:" + port(httpsAddr) + "/"); err == nil {
		t.Error("a handshake for nope.aim.test, which is no solution, succeeded")
	}
	// A client that trusts only the system's roots refuses aim's CA.
	sys := httpsClient(httpsAddr, nil)
	var unknown x509.UnknownAuthorityError
	if _, err := sys.Get("https://calm.aim.test:" + port(httpsAddr) + "/"); !errors.As(err, &unknown) {
		t.Errorf("a client with the system roots: %v, want an unknown authority", err)
	}

	// Plain HTTP for the domain redirects to HTTPS; the CLI on loopback
	// is served as it is.
	req, _ := http.NewRequest(http.MethodGet, "http://"+a.Addr+"/whoami?x=1", nil)
	req.Host = "calm.aim.test"
	resp, err = plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://calm.aim.test:" + port(httpsAddr) + "/whoami?x=1"; resp.StatusCode/100 != 3 || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if out := a.MustCLI("ls"); !strings.Contains(out, "calm") {
		t.Errorf("the CLI over loopback: %s", out)
	}
}

// TestTLSACME gets a certificate for a solution from a real ACME server
// (pebble, which validates the challenge against aim's listeners) and
// refuses a name that is not a solution's.
func TestTLSACME(t *testing.T) {
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	pb := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: atoi(port(httpAddr)), TLSPort: atoi(port(httpsAddr))})
	a := StartAimAt(t, httpAddr, "--domain", "aim.test", "--tls", "acme", "--https", httpsAddr,
		"--acme-ca", pb.DirectoryURL, "--acme-ca-root", pb.RootsFile, "--acme-email", "ops@aim.test")
	a.MustCLI("deploy", "-q", writeSolution(t, "name: calm\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))

	cl := httpsClient(httpsAddr, pb.IssuerRoots)
	resp, err := cl.Get("https://calm.aim.test:" + port(httpsAddr) + "/whoami")
	if err != nil {
		t.Fatalf("HTTPS with a certificate from pebble: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"solution":"calm"`) {
		t.Errorf("HTTPS answer %d %s", resp.StatusCode, body)
	}
	if c := resp.TLS.PeerCertificates[0]; !slices.Contains(c.DNSNames, "calm.aim.test") {
		t.Errorf("certificate for %v", c.DNSNames)
	}
	if _, err := cl.Get("https://nope.aim.test:" + port(httpsAddr) + "/"); err == nil {
		t.Error("a handshake for nope.aim.test, which is no solution, succeeded")
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestTLSACMEWildcardRFC2136 runs aim serve with one wildcard
// certificate through DNS-01: aim sets the challenge records by RFC 2136
// dynamic updates, signed with a TSIG key whose secret it reads from a
// file, to the test's DNS server, where pebble checks them. A solution
// is then served under *.aim.test, and the apex under its own name.
func TestTLSACMEWildcardRFC2136(t *testing.T) {
	const key, secret = "aim-acme.", "k3JkL0v2bXlkbnNzZWNyZXQtZm9yLWFpbS10ZXN0cw=="
	// HTTP-01 and TLS-ALPN-01 validation would reach nothing: only
	// DNS-01 can succeed.
	pb := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: 1, TLSPort: 1, TSIGKeys: map[string]string{key: secret}})
	secretFile := filepath.Join(t.TempDir(), "tsig.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpsAddr := freeAddr(t)
	a := StartAim(t, "--domain", "aim.test", "--tls", "acme", "--https", httpsAddr,
		"--acme-ca", pb.DirectoryURL, "--acme-ca-root", pb.RootsFile,
		"--acme-dns", "rfc2136", "--acme-dns-server", pb.DNS.Addr(), "--acme-dns-resolvers", pb.DNS.Addr(),
		"--acme-dns-tsig-key", key, "--acme-dns-tsig-secret-file", secretFile)
	a.MustCLI("deploy", "-q", writeSolution(t, "name: calm\ncomponents:\n  - name: web\n    image: "+TestImage+"\n", nil))

	// The certificates are obtained in the background from aim's start.
	cl := httpsClient(httpsAddr, pb.IssuerRoots)
	get := func(url string) *http.Response {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			resp, err := cl.Get(url)
			if err == nil {
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: no certificate after 60s: %v", url, err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	resp := get("https://calm.aim.test:" + port(httpsAddr) + "/whoami")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"solution":"calm"`) {
		t.Errorf("HTTPS answer %d %s", resp.StatusCode, body)
	}
	if names := resp.TLS.PeerCertificates[0].DNSNames; !slices.Equal(names, []string{"*.aim.test"}) {
		t.Errorf("calm.aim.test served a certificate for %v, want [*.aim.test]", names)
	}
	resp = get("https://aim.test:" + port(httpsAddr) + "/healthz")
	resp.Body.Close()
	if names := resp.TLS.PeerCertificates[0].DNSNames; resp.StatusCode != 200 || !slices.Equal(names, []string{"aim.test"}) {
		t.Errorf("the apex: %d with a certificate for %v, want 200 with [aim.test]", resp.StatusCode, names)
	}
	// The wildcard covers every name, so one that is no solution's gets
	// a handshake and then the gateway's 404.
	resp = get("https://nope.aim.test:" + port(httpsAddr) + "/")
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("nope.aim.test: %d, want 404", resp.StatusCode)
	}

	// Each challenge record was added and then removed by an update.
	if n := pb.DNS.Updates(); n < 4 {
		t.Errorf("the DNS server applied %d dynamic updates, want 4 (two records added, two removed)", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(pb.DNS.TXT("_acme-challenge.aim.test")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("challenge records left behind: %v", pb.DNS.TXT("_acme-challenge.aim.test"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
