package certs

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/aimhub/aim/internal/dnsupdate"
	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/test/pebble"
)

// TestACMEOnDemand gets a certificate for a solution's name from pebble,
// a real ACME server that validates the challenge against this test's
// listeners, serves it over HTTP/2, and refuses a name that is not a
// solution's without asking the CA. It runs once per challenge type, so
// that both the HTTPS listener (TLS-ALPN-01) and the HTTP one (HTTP-01)
// are shown to answer pebble.
func TestACMEOnDemand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble, a real ACME server; skipped under -short")
	}
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) { testACMEOnDemand(t, challenge) })
	}
}

func testACMEOnDemand(t *testing.T, challenge string) {
	g := listen(t)
	ca := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: g.httpPort(), TLSPort: g.httpsPort()})
	dir := t.TempDir()
	sols := allow("demo")
	cfg := Config{
		Mode:      ModeACME,
		Dir:       dir,
		Domain:    "aim.test",
		Allow:     sols.Allow,
		ACMECA:    ca.DirectoryURL,
		ACMERoots: ca.Roots,
		HTTPPort:  g.httpPort(),
		HTTPSPort: g.httpsPort(),
		HSTS:      time.Hour,
		Logger:    testLogger(t),
	}
	m, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Production offers pebble both; certmagic picks. Here one is taken
	// away so that the other is the one proven.
	m.acme.DisableHTTPChallenge = challenge != "http-01"
	m.acme.DisableTLSALPNChallenge = challenge != "tls-alpn-01"
	g.serve(t, m, app)

	// Several first requests at once: one order at the CA.
	url := fmt.Sprintf("https://demo.aim.test:%d/", g.httpsPort())
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			resp, err := client(ca.IssuerRoots).Get(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			switch {
			case resp.StatusCode != http.StatusOK:
				errs[i] = fmt.Errorf("status %s: %s", resp.Status, body)
			case resp.ProtoMajor != 2:
				errs[i] = fmt.Errorf("protocol %s, want HTTP/2", resp.Proto)
			case resp.Header.Get("Strict-Transport-Security") != "max-age=3600":
				errs[i] = fmt.Errorf("Strict-Transport-Security %q, want max-age=3600", resp.Header.Get("Strict-Transport-Security"))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("GET %s trusting pebble's root: %v", url, err)
	}
	t.Logf("first certificate from pebble in %s", time.Since(start).Round(time.Millisecond))
	if n := m.obtaining.Load(); n != 1 {
		t.Errorf("4 concurrent first requests started %d issuances, want 1", n)
	}
	if n := g.challenges.Load(); (n > 0) != (challenge == "http-01") {
		t.Errorf("the HTTP listener answered %d HTTP-01 requests during %s", n, challenge)
	}

	leaf, err := handshake(t.Context(), g, "demo.aim.test", ca.IssuerRoots)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leaf.DNSNames, []string{"demo.aim.test"}) {
		t.Errorf("certificate names %v, want [demo.aim.test]", leaf.DNSNames)
	}

	// Refused before the CA is asked: no issuance starts, and the
	// handshake fails at once instead of after an ACME round trip.
	start = time.Now()
	if _, err := handshake(t.Context(), g, "nope.aim.test", ca.IssuerRoots); err == nil {
		t.Error("handshake for nope.aim.test succeeded; want it refused")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing nope.aim.test took %s", d)
	}
	if n := m.obtaining.Load(); n != 1 {
		t.Errorf("%d issuances after refusing nope.aim.test, want still 1", n)
	}
	if !slices.Contains(sols.Asked(), "nope") {
		t.Errorf("Allow was asked %v; want nope among them", sols.Asked())
	}

	// HTTP redirects everything but challenges; a POST keeps its method.
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://demo.aim.test:%d/api", g.httpPort()), nil)
	resp, err := client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://demo.aim.test:%d/api", g.httpsPort()); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("POST over HTTP: %s to %q, want 308 to %q", resp.Status, resp.Header.Get("Location"), want)
	}

	// A restart loads the certificate from Dir instead of asking again.
	g2 := listen(t)
	cfg.HTTPPort, cfg.HTTPSPort = g2.httpPort(), g2.httpsPort()
	m2, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g2.serve(t, m2, app)
	if _, err := handshake(t.Context(), g2, "demo.aim.test", ca.IssuerRoots); err != nil {
		t.Errorf("after a restart: %v", err)
	}
	if n := m2.obtaining.Load(); n != 0 {
		t.Errorf("after a restart, %d issuances; want the stored certificate", n)
	}
}

// TestACMEWildcardDNS01 gets certificates for the apex and for every
// subdomain (one wildcard) through DNS-01, pebble checking the TXT
// records on the test's DNS server. The records get there in two ways:
// through the server's own libdns methods, standing in for a DNS
// provider's API, and through aim's RFC 2136 provider, which sends
// TSIG-signed dynamic updates to the server over the network.
func TestACMEWildcardDNS01(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble, a real ACME server; skipped under -short")
	}
	const key, secret = "aim-acme.", "k3JkL0v2bXlkbnNzZWNyZXQtZm9yLWFpbS10ZXN0cw=="
	for _, tc := range []struct {
		name     string
		provider func(t *testing.T, dns *pebble.DNS) certmagic.DNSProvider
	}{
		{"in-process", func(_ *testing.T, dns *pebble.DNS) certmagic.DNSProvider { return dns }},
		{"rfc2136", func(t *testing.T, dns *pebble.DNS) certmagic.DNSProvider {
			p, err := dnsupdate.New(dnsupdate.Config{Server: dns.Addr(), KeyName: key, Secret: secret})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Validation must not reach the listeners: point pebble elsewhere.
			ca := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: 1, TLSPort: 1, TSIGKeys: map[string]string{key: secret}})
			testACMEWildcardDNS01(t, ca, tc.provider(t, ca.DNS))
			if n := ca.DNS.Updates(); (n > 0) != (tc.name == "rfc2136") {
				t.Errorf("the DNS server applied %d dynamic updates", n)
			}
		})
	}
}

func testACMEWildcardDNS01(t *testing.T, ca *pebble.Server, provider certmagic.DNSProvider) {
	g := listen(t)
	m, err := New(t.Context(), dns01Config(t, ca, g, provider, testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	g.serve(t, m, app)

	start := time.Now()
	deadline := start.Add(45 * time.Second)
	for {
		leaf, err := handshake(t.Context(), g, "anything.aim.test", ca.IssuerRoots)
		if err == nil {
			if !slices.Equal(leaf.DNSNames, []string{"*.aim.test"}) {
				t.Errorf("certificate names %v, want [*.aim.test]", leaf.DNSNames)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wildcard certificate after 45s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("wildcard certificate from pebble in %s", time.Since(start).Round(time.Millisecond))
	// The apex has its own certificate; it may come a moment later.
	for {
		_, err := handshake(t.Context(), g, "aim.test", ca.IssuerRoots)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for the apex after 45s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if txt := ca.DNS.TXT("_acme-challenge.aim.test"); len(txt) != 0 {
		t.Errorf("challenge records left behind: %v", txt)
	}
}

// TestACMEDNS01WrongKey: with a TSIG secret the DNS server does not
// know, no certificate is issued, nothing in the zone changes, and the
// log says why, naming the server, the zone and the TSIG error.
func TestACMEDNS01WrongKey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble, a real ACME server; skipped under -short")
	}
	const key = "aim-acme."
	ca := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: 1, TLSPort: 1,
		TSIGKeys: map[string]string{key: "k3JkL0v2bXlkbnNzZWNyZXQtZm9yLWFpbS10ZXN0cw=="}})
	provider, err := dnsupdate.New(dnsupdate.Config{Server: ca.DNS.Addr(), KeyName: key, Secret: "b3RoZXItc2VjcmV0LW9mLXRoZS1zYW1lLWxlbmd0aA=="})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lines{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testlog.Writer(t)), nil))
	g := listen(t)
	if _, err := New(t.Context(), dns01Config(t, ca, g, provider, log)); err != nil {
		t.Fatal(err)
	}
	want := ca.DNS.Addr() + " refused the update of zone aim.test.: NOTAUTH, TSIG error BADSIG"
	deadline := time.Now().Add(30 * time.Second)
	for !logs.contains(want) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line says %q after 30s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := ca.DNS.Updates(); n != 0 {
		t.Errorf("the DNS server applied %d updates signed with the wrong secret", n)
	}
}

// lines collects log output for a test to search while it is written.
type lines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// dns01Config is aim.test's wildcard through DNS-01 with provider, from
// pebble, resolving on the test's DNS server.
func dns01Config(t *testing.T, ca *pebble.Server, g *gateway, provider certmagic.DNSProvider, log *slog.Logger) Config {
	return Config{
		Mode:         ModeACME,
		Dir:          t.TempDir(),
		Domain:       "aim.test",
		ACMECA:       ca.DirectoryURL,
		ACMERoots:    ca.Roots,
		DNS01:        provider,
		DNSResolvers: []string{ca.DNS.Addr()},
		HTTPPort:     g.httpPort(),
		HTTPSPort:    g.httpsPort(),
		Logger:       log,
	}
}
