// Package dnsupdate is a libdns provider that changes a zone through
// RFC 2136 dynamic updates signed with a TSIG key (RFC 8945): the
// standard, provider-neutral way to update a zone, which BIND, Knot,
// PowerDNS and most self-hosted DNS servers accept. aim uses it for the
// ACME DNS-01 challenge: certmagic finds the zone from the name's SOA,
// adds a TXT record at _acme-challenge.<domain> through AppendRecords,
// waits until it resolves, and removes it through DeleteRecords.
//
// Only TXT records are supported, which is all DNS-01 needs. Updates go
// over TCP, so a long record never meets UDP's size limits.
package dnsupdate

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// Config says where updates go and how they are signed. Zero values
// take the defaults named.
type Config struct {
	// Server is the host:port of the DNS server that takes updates for
	// the zone, usually its primary. Without a port, 53. Required.
	Server string
	// Zone is the zone named in each update. Empty means the zone the
	// caller passes (certmagic's: the one found from the name's SOA).
	// Set it when the update server knows the zone by another name than
	// resolvers do.
	Zone string
	// KeyName is the TSIG key's name, as the server knows it. Required.
	KeyName string
	// Algorithm is the TSIG algorithm: hmac-sha256, hmac-sha224,
	// hmac-sha384, hmac-sha512 or hmac-sha1. Empty means hmac-sha256.
	Algorithm string
	// Secret is the TSIG key's secret in base64, as in the key files
	// of BIND's tsig-keygen. Required.
	Secret string
	// Timeout bounds one update: connecting, sending and the answer.
	// Zero means 10 seconds.
	Timeout time.Duration
}

// Provider sends dynamic updates. It is safe for concurrent use.
type Provider struct {
	server    string
	zone      string // fully qualified, lower case; "" means the caller's
	key       string // fully qualified, lower case
	algorithm string // miekg/dns's name, e.g. "hmac-sha256."
	client    *dns.Client
}

var _ interface {
	libdns.RecordAppender
	libdns.RecordDeleter
} = (*Provider)(nil)

// algorithms are the TSIG algorithms accepted, by the names BIND's
// configuration uses. HMAC-MD5 is left out: RFC 8945 deprecates it.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

// New checks cfg and returns a Provider. It does not contact the
// server: a DNS server that is down at start must not stop aim, and
// certmagic retries and logs each failed update.
func New(cfg Config) (*Provider, error) {
	if cfg.Server == "" {
		return nil, errors.New("dnsupdate: no server to send updates to")
	}
	server := cfg.Server
	if _, _, err := net.SplitHostPort(server); err != nil {
		// No port (a bracketed IPv6 address loses its brackets first).
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		return nil, fmt.Errorf("dnsupdate: server %q: %w", cfg.Server, err)
	}
	key := canonical(cfg.KeyName)
	if key == "." {
		return nil, errors.New("dnsupdate: no TSIG key name")
	}
	if _, ok := dns.IsDomainName(key); !ok {
		return nil, fmt.Errorf("dnsupdate: TSIG key name %q is not a domain name", cfg.KeyName)
	}
	name := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(cfg.Algorithm)), ".")
	if name == "" {
		name = "hmac-sha256"
	}
	alg, ok := algorithms[name]
	if !ok {
		return nil, fmt.Errorf("dnsupdate: TSIG algorithm %q: want hmac-sha256, hmac-sha224, hmac-sha384, hmac-sha512 or hmac-sha1", cfg.Algorithm)
	}
	secret := strings.TrimSpace(cfg.Secret)
	if secret == "" {
		return nil, fmt.Errorf("dnsupdate: no secret for TSIG key %s", key)
	}
	if raw, err := base64.StdEncoding.DecodeString(secret); err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("dnsupdate: the secret of TSIG key %s is not base64", key)
	}
	zone := ""
	if strings.TrimSpace(cfg.Zone) != "" {
		zone = canonical(cfg.Zone)
		if _, ok := dns.IsDomainName(zone); !ok || zone == "." {
			return nil, fmt.Errorf("dnsupdate: zone %q is not a domain name", cfg.Zone)
		}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	return &Provider{
		server:    server,
		zone:      zone,
		key:       key,
		algorithm: alg,
		client: &dns.Client{
			Net:        "tcp",
			Timeout:    timeout,
			TsigSecret: map[string]string{key: secret},
		},
	}, nil
}

// AppendRecords adds TXT records to zone and returns them as
// libdns.TXT. One update carries them all, so either all are added or
// none.
func (p *Provider) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	upd, rrs, out, err := p.txtRecords(zone, recs, true)
	if err != nil {
		return nil, err
	}
	m := p.update(upd)
	m.Insert(rrs)
	if err := p.send(ctx, upd, m); err != nil {
		return nil, fmt.Errorf("dnsupdate: adding %s: %w", names(rrs), err)
	}
	return out, nil
}

// DeleteRecords removes TXT records from zone: the record with the
// given text, or every TXT record of the name when the text is empty.
// The TTL is ignored, as RFC 2136 ignores it when deleting. Records that
// do not exist are ignored by the server, which does not say which
// existed, so all the records asked for are returned.
func (p *Provider) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	upd, rrs, out, err := p.txtRecords(zone, recs, false)
	if err != nil {
		return nil, err
	}
	m := p.update(upd)
	for _, rr := range rrs {
		if len(rr.(*dns.TXT).Txt) == 0 {
			m.RemoveRRset([]dns.RR{rr})
		} else {
			m.Remove([]dns.RR{rr})
		}
	}
	if err := p.send(ctx, upd, m); err != nil {
		return nil, fmt.Errorf("dnsupdate: deleting %s: %w", names(rrs), err)
	}
	return out, nil
}

// txtRecords turns libdns records relative to zone into TXT RRs with
// absolute names, and says which zone the update names. Records that
// are not TXT, or that fall outside the update's zone, are refused
// before anything is sent.
func (p *Provider) txtRecords(zone string, recs []libdns.Record, needText bool) (string, []dns.RR, []libdns.Record, error) {
	zone = canonical(zone)
	upd := p.zone
	if upd == "" {
		upd = zone
	}
	if upd == "." {
		return "", nil, nil, errors.New("dnsupdate: no zone given")
	}
	if len(recs) == 0 {
		return "", nil, nil, errors.New("dnsupdate: no records given")
	}
	rrs := make([]dns.RR, 0, len(recs))
	out := make([]libdns.Record, 0, len(recs))
	for _, rec := range recs {
		r := rec.RR()
		name := canonical(libdns.AbsoluteName(r.Name, zone))
		if !strings.EqualFold(r.Type, "TXT") {
			return "", nil, nil, fmt.Errorf("dnsupdate: %s: only TXT records are supported, not %q", name, r.Type)
		}
		if needText && r.Data == "" {
			return "", nil, nil, fmt.Errorf("dnsupdate: %s: a TXT record with no text", name)
		}
		if !dns.IsSubDomain(upd, name) {
			return "", nil, nil, fmt.Errorf("dnsupdate: %s is not in zone %s", name, upd)
		}
		rrs = append(rrs, &dns.TXT{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: uint32(r.TTL / time.Second)},
			Txt: txtStrings(r.Data),
		})
		out = append(out, libdns.TXT{Name: r.Name, TTL: r.TTL, Text: r.Data})
	}
	return upd, rrs, out, nil
}

// update starts a dynamic update of zone.
func (p *Provider) update(zone string) *dns.Msg {
	m := new(dns.Msg)
	m.SetUpdate(zone)
	return m
}

// send signs m, sends it and reads the answer, whose signature the
// client checks.
func (p *Provider) send(ctx context.Context, zone string, m *dns.Msg) error {
	m.SetTsig(p.key, p.algorithm, 300, time.Now().Unix())
	r, _, err := p.client.ExchangeContext(ctx, m, p.server)
	// A refusal comes first: a server that refuses a signature answers
	// unsigned, which the client reports as a bad signature of its own.
	if r != nil && r.Rcode != dns.RcodeSuccess {
		e := &UpdateError{Server: p.server, Zone: zone, Key: p.key, Rcode: r.Rcode}
		if t := r.IsTsig(); t != nil {
			e.TSIGError = int(t.Error)
		}
		return e
	}
	if err != nil {
		return fmt.Errorf("updating zone %s at %s: %w", zone, p.server, err)
	}
	return nil
}

// UpdateError is a server's refusal of an update.
type UpdateError struct {
	Server, Zone, Key string
	// Rcode is the answer's response code, e.g. dns.RcodeRefused.
	Rcode int
	// TSIGError is the error in the answer's TSIG record, e.g.
	// dns.RcodeBadSig; zero when none.
	TSIGError int
}

func (e *UpdateError) Error() string {
	code := dns.RcodeToString[e.Rcode]
	if code == "" {
		code = fmt.Sprintf("rcode %d", e.Rcode)
	}
	if e.TSIGError != 0 {
		tsig := dns.RcodeToString[e.TSIGError]
		if tsig == "" {
			tsig = fmt.Sprintf("%d", e.TSIGError)
		}
		code += ", TSIG error " + tsig
	}
	s := fmt.Sprintf("%s refused the update of zone %s: %s", e.Server, e.Zone, code)
	if hint := e.hint(); hint != "" {
		s += " (" + hint + ")"
	}
	return s
}

// hint says what a refusal usually means. Each was checked against
// what BIND 9.18 answers: BADKEY for an unknown key or another
// algorithm, BADSIG for another secret, REFUSED for a key or name its
// update-policy does not grant, NOTAUTH for a zone it does not serve.
func (e *UpdateError) hint() string {
	switch e.TSIGError {
	case dns.RcodeBadKey:
		return "the server has no TSIG key " + e.Key + " with this algorithm"
	case dns.RcodeBadSig:
		return "the server has another secret for TSIG key " + e.Key
	case dns.RcodeBadTime:
		return "this machine's clock and the server's differ by more than 5 minutes"
	}
	switch e.Rcode {
	case dns.RcodeRefused:
		return "the server's update policy does not let key " + e.Key + " change this name"
	case dns.RcodeNotAuth:
		return "the server is not authoritative for the zone; send updates to its primary"
	case dns.RcodeNotZone:
		return "a name is outside the zone"
	case dns.RcodeNotImplemented:
		return "the server does not take dynamic updates"
	}
	return ""
}

// txtStrings splits text into the strings of at most 255 bytes a TXT
// record is made of. miekg/dns reads a backslash in them as an escape,
// so backslashes are doubled.
func txtStrings(text string) []string {
	if text == "" {
		return nil
	}
	var out []string
	for len(text) > 0 {
		n := min(len(text), 255)
		out = append(out, strings.ReplaceAll(text[:n], `\`, `\\`))
		text = text[n:]
	}
	return out
}

// canonical is a name fully qualified and in lower case.
func canonical(name string) string {
	return dns.CanonicalName(strings.TrimSpace(name))
}

// names lists the distinct owner names of rrs, for errors.
func names(rrs []dns.RR) string {
	var ns []string
	for _, rr := range rrs {
		n := "TXT " + rr.Header().Name
		if len(ns) == 0 || ns[len(ns)-1] != n {
			ns = append(ns, n)
		}
	}
	return strings.Join(ns, ", ")
}
