package dnsupdate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"

	"github.com/aimhub/aim/test/pebble"
)

const (
	keyName = "aim-acme."
	secret  = "k3JkL0v2bXlkbnNzZWNyZXQtZm9yLWFpbS10ZXN0cw=="
	other   = "b3RoZXItc2VjcmV0LW9mLXRoZS1zYW1lLWxlbmd0aA=="
)

// startDNS runs the test DNS server for aim.test, taking updates signed
// with keyName and secret.
func startDNS(t *testing.T, keys map[string]string) *pebble.DNS {
	t.Helper()
	d, err := pebble.StartDNS("aim.test", keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func newProvider(t *testing.T, cfg Config) *Provider {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lookupTXT asks the server over the network, as a resolver would.
func lookupTXT(t *testing.T, d *pebble.DNS, name string) []string {
	t.Helper()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, d.Addr())
	}}
	txt, err := r.LookupTXT(t.Context(), name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("looking up TXT %s: %v", name, err)
	}
	slices.Sort(txt)
	return txt
}

// TestAppendDelete adds and removes the two TXT records a certificate
// for aim.test and *.aim.test needs, at once as certmagic does, and
// sees them come and go through DNS lookups.
func TestAppendDelete(t *testing.T) {
	d := startDNS(t, map[string]string{keyName: secret})
	p := newProvider(t, Config{Server: d.Addr(), KeyName: "AIM-ACME", Secret: secret})

	const name = "_acme-challenge.aim.test"
	recs := []libdns.Record{
		libdns.TXT{Name: "_acme-challenge", TTL: time.Minute, Text: "token-for-apex"},
		libdns.TXT{Name: "_acme-challenge", TTL: time.Minute, Text: "token-for-wildcard"},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(recs))
	for i, rec := range recs {
		wg.Go(func() {
			got, err := p.AppendRecords(t.Context(), "aim.test.", []libdns.Record{rec})
			if err == nil && (len(got) != 1 || got[0] != rec) {
				err = fmt.Errorf("AppendRecords returned %v, want [%v]", got, rec)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got, want := lookupTXT(t, d, name), []string{"token-for-apex", "token-for-wildcard"}; !slices.Equal(got, want) {
		t.Fatalf("TXT %s = %q after two appends, want %q", name, got, want)
	}

	// DeleteRecords removes the record with the given text only.
	if _, err := p.DeleteRecords(t.Context(), "aim.test.", recs[:1]); err != nil {
		t.Fatal(err)
	}
	if got, want := lookupTXT(t, d, name), []string{"token-for-wildcard"}; !slices.Equal(got, want) {
		t.Fatalf("TXT %s = %q after deleting one, want %q", name, got, want)
	}
	// Without text, every TXT record of the name.
	if _, err := p.DeleteRecords(t.Context(), "aim.test", []libdns.Record{libdns.RR{Type: "TXT", Name: "_acme-challenge"}}); err != nil {
		t.Fatal(err)
	}
	if got := lookupTXT(t, d, name); len(got) != 0 {
		t.Fatalf("TXT %s = %q after deleting the rest, want none", name, got)
	}
	if n := d.Updates(); n != 4 {
		t.Errorf("the server applied %d updates, want 4", n)
	}
}

// TestLongText is a regression test for TXT records longer than one
// DNS character-string (255 bytes), and for backslashes, which
// miekg/dns would otherwise read as escapes.
func TestLongText(t *testing.T) {
	d := startDNS(t, map[string]string{keyName: secret})
	p := newProvider(t, Config{Server: d.Addr(), KeyName: keyName, Secret: secret})
	text := strings.Repeat("0123456789", 60) + `\end`
	if _, err := p.AppendRecords(t.Context(), "aim.test.", []libdns.Record{libdns.TXT{Name: "long", Text: text}}); err != nil {
		t.Fatal(err)
	}
	if got := lookupTXT(t, d, "long.aim.test"); len(got) != 1 || got[0] != text {
		t.Fatalf("TXT long.aim.test = %q, want the %d bytes added", got, len(text))
	}
	if _, err := p.DeleteRecords(t.Context(), "aim.test.", []libdns.Record{libdns.TXT{Name: "long", Text: text}}); err != nil {
		t.Fatal(err)
	}
	if got := lookupTXT(t, d, "long.aim.test"); len(got) != 0 {
		t.Fatalf("TXT long.aim.test = %q after deleting it", got)
	}
}

// TestZone sends updates for the configured zone rather than the one
// the caller names, and keeps names outside it from being sent.
func TestZone(t *testing.T) {
	d := startDNS(t, map[string]string{keyName: secret})
	p := newProvider(t, Config{Server: d.Addr(), Zone: "AIM.test", KeyName: keyName, Secret: secret})
	// The caller found the zone "demo.aim.test." (say, from a resolver
	// that sees a delegation the update server does not have).
	if _, err := p.AppendRecords(t.Context(), "demo.aim.test.", []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "v"}}); err != nil {
		t.Fatal(err)
	}
	if got := lookupTXT(t, d, "_acme-challenge.demo.aim.test"); !slices.Equal(got, []string{"v"}) {
		t.Fatalf("TXT = %q, want [v]", got)
	}
	_, err := p.AppendRecords(t.Context(), "example.com.", []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "v"}})
	if err == nil || !strings.Contains(err.Error(), "_acme-challenge.example.com. is not in zone aim.test.") {
		t.Fatalf("a name outside the zone: %v", err)
	}
}

// TestRefused checks that each way a server refuses an update comes
// back as an UpdateError that names the server, the zone and the codes,
// and that nothing changed.
func TestRefused(t *testing.T) {
	keyed := startDNS(t, map[string]string{keyName: secret})
	keyless := startDNS(t, nil)
	for _, tc := range []struct {
		name      string
		server    *pebble.DNS
		cfg       Config
		rcode     int
		tsigError int
		says      string
	}{
		{
			name:   "wrong secret",
			server: keyed, cfg: Config{KeyName: keyName, Secret: other},
			rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadSig,
			says: "NOTAUTH, TSIG error BADSIG (the server has another secret for TSIG key aim-acme.)",
		},
		{
			name:   "unknown key",
			server: keyed, cfg: Config{KeyName: "someone-else", Secret: secret},
			rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadKey,
			says: "NOTAUTH, TSIG error BADKEY (the server has no TSIG key someone-else. with this algorithm)",
		},
		{
			name:   "server takes no updates",
			server: keyless, cfg: Config{KeyName: keyName, Secret: secret},
			rcode: dns.RcodeRefused,
			says:  "REFUSED (the server's update policy does not let key aim-acme. change this name)",
		},
		{
			name:   "zone the server does not serve",
			server: keyed, cfg: Config{KeyName: keyName, Secret: secret, Zone: "example.com"},
			rcode: dns.RcodeNotAuth,
			says:  "NOTAUTH (the server is not authoritative for the zone; send updates to its primary)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Server = tc.server.Addr()
			p := newProvider(t, tc.cfg)
			zone := "aim.test."
			if tc.cfg.Zone != "" {
				zone = dns.Fqdn(tc.cfg.Zone)
			}
			before := tc.server.Updates()
			_, err := p.AppendRecords(t.Context(), zone, []libdns.Record{libdns.TXT{Name: "_acme-challenge", Text: "v"}})
			var ue *UpdateError
			if !errors.As(err, &ue) {
				t.Fatalf("AppendRecords: %v, want an UpdateError", err)
			}
			t.Log(err)
			if ue.Rcode != tc.rcode || ue.TSIGError != tc.tsigError {
				t.Errorf("rcode %s, TSIG error %d; want %s, %d", dns.RcodeToString[ue.Rcode], ue.TSIGError, dns.RcodeToString[tc.rcode], tc.tsigError)
			}
			want := "dnsupdate: adding TXT _acme-challenge." + zone + ": " + tc.server.Addr() + " refused the update of zone " + zone + ": " + tc.says
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error\n  %s\nwant it to start with\n  %s", err, want)
			}
			if n := tc.server.Updates(); n != before {
				t.Errorf("the server applied %d updates", n-before)
			}
		})
	}
}

// TestUnreachable names the server an update could not reach.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := newProvider(t, Config{Server: addr, KeyName: keyName, Secret: secret, Timeout: 2 * time.Second})
	_, err = p.AppendRecords(t.Context(), "aim.test.", []libdns.Record{libdns.TXT{Name: "x", Text: "v"}})
	if err == nil || !strings.Contains(err.Error(), "updating zone aim.test. at "+addr) {
		t.Fatalf("AppendRecords to nothing: %v", err)
	}
}

// TestRecordsRefusedBeforeSending: what cannot be a valid TXT update
// never reaches the server.
func TestRecordsRefusedBeforeSending(t *testing.T) {
	d := startDNS(t, map[string]string{keyName: secret})
	p := newProvider(t, Config{Server: d.Addr(), KeyName: keyName, Secret: secret})
	for _, tc := range []struct {
		name string
		zone string
		recs []libdns.Record
		says string
	}{
		{"not TXT", "aim.test.", []libdns.Record{libdns.Address{Name: "www", IP: netip.MustParseAddr("127.0.0.1")}}, `www.aim.test.: only TXT records are supported, not "A"`},
		{"no text", "aim.test.", []libdns.Record{libdns.TXT{Name: "x"}}, "x.aim.test.: a TXT record with no text"},
		{"no records", "aim.test.", nil, "no records given"},
		{"no zone", "", []libdns.Record{libdns.TXT{Name: "x", Text: "v"}}, "no zone given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.AppendRecords(t.Context(), tc.zone, tc.recs)
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("AppendRecords: %v, want it to say %q", err, tc.says)
			}
		})
	}
	if n := d.Updates(); n != 0 {
		t.Errorf("the server applied %d updates", n)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    Config
		server string // want, when no error
		err    string
	}{
		{name: "defaults", cfg: Config{Server: "ns1.example.com", KeyName: "k", Secret: secret}, server: "ns1.example.com:53"},
		{name: "IPv6 without port", cfg: Config{Server: "[2001:db8::1]", KeyName: "k", Secret: secret}, server: "[2001:db8::1]:53"},
		{name: "port", cfg: Config{Server: "10.0.0.1:5353", KeyName: "k", Secret: secret, Algorithm: "HMAC-SHA512."}, server: "10.0.0.1:5353"},
		{name: "no server", cfg: Config{KeyName: "k", Secret: secret}, err: "no server"},
		{name: "no key", cfg: Config{Server: "ns1", Secret: secret}, err: "no TSIG key name"},
		{name: "no secret", cfg: Config{Server: "ns1", KeyName: "k"}, err: "no secret for TSIG key k."},
		{name: "secret not base64", cfg: Config{Server: "ns1", KeyName: "k", Secret: "not base64!"}, err: "the secret of TSIG key k. is not base64"},
		{name: "MD5", cfg: Config{Server: "ns1", KeyName: "k", Secret: secret, Algorithm: "hmac-md5"}, err: `TSIG algorithm "hmac-md5": want hmac-sha256`},
		{name: "bad zone", cfg: Config{Server: "ns1", KeyName: "k", Secret: secret, Zone: "a..b"}, err: `zone "a..b" is not a domain name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(tc.cfg)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("New: %v, want an error saying %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.err == "" && p.server != tc.server:
				t.Errorf("server %q, want %q", p.server, tc.server)
			}
		})
	}
}
