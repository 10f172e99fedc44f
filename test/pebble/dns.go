package pebble

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// DNS is a tiny authoritative DNS server for one zone, on 127.0.0.1 over
// UDP and TCP (pebble asks over TCP, certmagic over UDP): every A query
// is answered with 127.0.0.1, AAAA with nothing, SOA at the zone's apex,
// and TXT from the records given through its libdns methods or through
// RFC 2136 dynamic updates. The libdns methods stand in for a DNS
// provider's API, which a test cannot reach; the DNS queries, the
// updates and pebble's DNS-01 validation against it are real.
//
// Updates are taken as a primary server such as BIND takes them: only
// when signed with one of the TSIG keys the server was started with
// (NOTAUTH with the TSIG error BADKEY, BADSIG or BADTIME otherwise, and
// REFUSED when unsigned), only for the server's zone (NOTAUTH for
// another, NOTZONE for a name outside it), and only for TXT records
// (REFUSED for any other type). An update is applied whole or not at
// all.
type DNS struct {
	zone    string // fully qualified, lower case
	addr    string
	keys    map[string]string // TSIG key name -> base64 secret
	servers []*dns.Server

	mu      sync.Mutex
	txt     map[string][]string // fully qualified name -> texts, unescaped
	updates int                 // dynamic updates applied
}

var _ interface {
	libdns.RecordAppender
	libdns.RecordDeleter
} = (*DNS)(nil)

// StartDNS starts a DNS server for zone; Close stops it. It takes
// dynamic updates signed with one of keys (fully qualified key name ->
// base64 secret, any HMAC algorithm); with no keys it refuses them all.
func StartDNS(zone string, keys map[string]string) (*DNS, error) {
	d := &DNS{zone: dns.Fqdn(strings.ToLower(zone)), txt: map[string][]string{}, keys: map[string]string{}}
	for name, secret := range keys {
		d.keys[dns.CanonicalName(name)] = secret
	}
	// UDP and TCP must share one port; another process may hold the TCP
	// port of a fresh UDP one, so try a few.
	var err error
	for range 10 {
		var pc net.PacketConn
		var ln net.Listener
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("dns: listening on udp: %w", err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		d.addr = pc.LocalAddr().String()
		d.servers = []*dns.Server{
			{PacketConn: pc, Handler: d, TsigSecret: d.keys, MsgAcceptFunc: acceptUpdates},
			{Listener: ln, Handler: d, TsigSecret: d.keys, MsgAcceptFunc: acceptUpdates},
		}
		break
	}
	if err != nil {
		return nil, fmt.Errorf("dns: listening on tcp beside udp: %w", err)
	}
	for _, s := range d.servers {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		<-started
	}
	return d, nil
}

// Addr is the server's host:port.
func (d *DNS) Addr() string { return d.addr }

// Close stops the server.
func (d *DNS) Close() {
	for _, s := range d.servers {
		_ = s.Shutdown()
	}
}

// acceptUpdates lets dynamic updates through, which miekg/dns's
// default refuses because their sections may hold any number of
// records.
func acceptUpdates(h dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if opcode := int(h.Bits>>11) & 0xF; opcode == dns.OpcodeUpdate && h.Bits&qr == 0 {
		if h.Qdcount != 1 {
			return dns.MsgReject
		}
		return dns.MsgAccept
	}
	return dns.DefaultMsgAcceptFunc(h)
}

// ServeDNS answers one query or update.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode == dns.OpcodeUpdate {
		d.serveUpdate(w, req)
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype, Ttl: 1}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeSOA:
			if name == d.zone {
				m.Answer = append(m.Answer, &dns.SOA{
					Hdr: hdr, Ns: "ns." + d.zone, Mbox: "hostmaster." + d.zone,
					Serial: 1, Refresh: 60, Retry: 60, Expire: 60, Minttl: 1,
				})
			}
		case dns.TypeTXT:
			d.mu.Lock()
			for _, v := range d.txt[name] {
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: txtStrings(v)})
			}
			d.mu.Unlock()
		}
	}
	_ = w.WriteMsg(m)
}

// serveUpdate applies an RFC 2136 update of TXT records and answers it,
// signed with the request's key.
func (d *DNS) serveUpdate(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetRcode(req, dns.RcodeSuccess)
	t := req.IsTsig()
	if t == nil || len(d.keys) == 0 {
		m.Rcode = dns.RcodeRefused
		_ = w.WriteMsg(m)
		return
	}
	// The answer carries a TSIG record: signed when the request's
	// signature held, unsigned with the error otherwise (RFC 8945 5.3.2).
	m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	if err := w.TsigStatus(); err != nil {
		m.Rcode = dns.RcodeNotAuth
		tsig := m.Extra[len(m.Extra)-1].(*dns.TSIG)
		switch {
		case errors.Is(err, dns.ErrSecret):
			tsig.Error = dns.RcodeBadKey
		case errors.Is(err, dns.ErrTime):
			tsig.Error = dns.RcodeBadTime
		default:
			tsig.Error = dns.RcodeBadSig
		}
		_ = w.WriteMsg(m)
		return
	}
	if q := req.Question[0]; dns.CanonicalName(q.Name) != d.zone || q.Qtype != dns.TypeSOA {
		m.Rcode = dns.RcodeNotAuth
		_ = w.WriteMsg(m)
		return
	}
	d.mu.Lock()
	txt := make(map[string][]string, len(d.txt))
	for name, vals := range d.txt {
		txt[name] = slices.Clone(vals)
	}
	for _, rr := range req.Ns {
		h := rr.Header()
		name := dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(d.zone, name) {
			m.Rcode = dns.RcodeNotZone
			break
		}
		if h.Rrtype != dns.TypeTXT {
			m.Rcode = dns.RcodeRefused
			break
		}
		switch h.Class {
		case dns.ClassINET: // add
			v := txtText(rr.(*dns.TXT).Txt)
			if !slices.Contains(txt[name], v) {
				txt[name] = append(txt[name], v)
			}
		case dns.ClassNONE: // delete this record
			v := txtText(rr.(*dns.TXT).Txt)
			txt[name] = slices.DeleteFunc(txt[name], func(s string) bool { return s == v })
		case dns.ClassANY: // delete the name's TXT records
			delete(txt, name)
		default:
			m.Rcode = dns.RcodeFormatError
		}
	}
	if m.Rcode == dns.RcodeSuccess {
		d.txt = txt
		d.updates++
	}
	d.mu.Unlock()
	_ = w.WriteMsg(m)
}

// Updates counts the dynamic updates applied.
func (d *DNS) Updates() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.updates
}

// AppendRecords adds TXT records; other types are refused, as the tests
// need none.
func (d *DNS) AppendRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" {
			return nil, fmt.Errorf("dns: only TXT records can be added, not %s", rr.Type)
		}
		name := dns.Fqdn(strings.ToLower(libdns.AbsoluteName(rr.Name, zone)))
		d.txt[name] = append(d.txt[name], rr.Data)
	}
	return recs, nil
}

// DeleteRecords removes TXT records with the given names and values.
func (d *DNS) DeleteRecords(_ context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var deleted []libdns.Record
	for _, r := range recs {
		rr := r.RR()
		name := dns.Fqdn(strings.ToLower(libdns.AbsoluteName(rr.Name, zone)))
		vals := d.txt[name]
		for i, v := range vals {
			if rr.Type == "TXT" && v == rr.Data {
				d.txt[name] = append(vals[:i:i], vals[i+1:]...)
				deleted = append(deleted, r)
				break
			}
		}
	}
	return deleted, nil
}

// TXT returns the TXT values now published for a fully qualified name.
func (d *DNS) TXT(name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.txt[dns.Fqdn(strings.ToLower(name))]...)
}

// txtStrings splits a record's text into miekg/dns's TXT strings: at
// most 255 bytes each, backslashes escaped.
func txtStrings(text string) []string {
	var out []string
	for len(text) > 0 {
		n := min(len(text), 255)
		out = append(out, strings.ReplaceAll(text[:n], `\`, `\\`))
		text = text[n:]
	}
	return out
}

// txtText joins miekg/dns's TXT strings, which escape a backslash, a
// quote and unprintable bytes (\DDD), into the record's text.
func txtText(strs []string) string {
	var b strings.Builder
	for _, s := range strs {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				c = s[i]
				if i+2 < len(s) && isDigit(c) && isDigit(s[i+1]) && isDigit(s[i+2]) {
					c = (c-'0')*100 + (s[i+1]-'0')*10 + (s[i+2] - '0')
					i += 2
				}
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
