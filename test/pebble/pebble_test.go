package pebble

import (
	"context"
	"net"
	"slices"
	"testing"

	"github.com/libdns/libdns"
)

func TestStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs pebble, a real ACME server; skipped under -short")
	}
	s := Start(t, Options{Zone: "aim.test"})
	if s.DirectoryURL == "" || s.Roots == nil || s.IssuerRoots == nil {
		t.Fatalf("Start returned an incomplete server: %+v", s)
	}

	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, s.DNS.Addr())
	}}
	addrs, err := r.LookupHost(t.Context(), "anything.aim.test")
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
		t.Fatalf("LookupHost(anything.aim.test) = %v, %v; want [127.0.0.1]", addrs, err)
	}

	rec := libdns.TXT{Name: "_acme-challenge.demo", Text: "token"}
	if _, err := s.DNS.AppendRecords(t.Context(), "aim.test.", []libdns.Record{rec}); err != nil {
		t.Fatal(err)
	}
	txt, err := r.LookupTXT(t.Context(), "_acme-challenge.demo.aim.test")
	if err != nil || !slices.Equal(txt, []string{"token"}) {
		t.Fatalf("LookupTXT = %v, %v; want [token]", txt, err)
	}
	if del, err := s.DNS.DeleteRecords(t.Context(), "aim.test.", []libdns.Record{rec}); err != nil || len(del) != 1 {
		t.Fatalf("DeleteRecords = %v, %v; want the one record", del, err)
	}
	if got := s.DNS.TXT("_acme-challenge.demo.aim.test"); len(got) != 0 {
		t.Fatalf("TXT after delete = %v; want none", got)
	}
}
