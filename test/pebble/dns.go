package pebble

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/libdns/libdns"
	"github.com/miekg/dns"
)

// DNS is a tiny authoritative DNS server for one zone, on 127.0.0.1 over
// UDP and TCP (pebble asks over TCP, certmagic over UDP): every A query
// is answered with 127.0.0.1, AAAA with nothing, SOA at the zone's apex,
// and TXT from the records given through its libdns methods. It stands in
// for a DNS provider's API, which a test cannot reach; the DNS queries and
// pebble's DNS-01 validation against it are real.
type DNS struct {
	zone    string // fully qualified, lower case
	addr    string
	servers []*dns.Server

	mu  sync.Mutex
	txt map[string][]string // fully qualified name -> values
}

var _ interface {
	libdns.RecordAppender
	libdns.RecordDeleter
} = (*DNS)(nil)

// StartDNS starts a DNS server for zone; Close stops it.
func StartDNS(zone string) (*DNS, error) {
	d := &DNS{zone: dns.Fqdn(strings.ToLower(zone)), txt: map[string][]string{}}
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
			{PacketConn: pc, Handler: d},
			{Listener: ln, Handler: d},
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

// ServeDNS answers one query.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
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
				m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
			}
			d.mu.Unlock()
		}
	}
	_ = w.WriteMsg(m)
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
