package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/libdns"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Mode
		wantErr string
	}{
		{"", ModeOff, ""},
		{"off", ModeOff, ""},
		{"Internal", ModeInternal, ""},
		{" acme ", ModeACME, ""},
		{"on", "", `unknown TLS mode "on": want off, internal or acme`},
	} {
		got, err := ParseMode(tc.in)
		if got != tc.want || errString(err) != tc.wantErr {
			t.Errorf("ParseMode(%q) = %q, %v; want %q, %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

type nopDNS struct{}

func (nopDNS) AppendRecords(context.Context, string, []libdns.Record) ([]libdns.Record, error) {
	return nil, nil
}

func (nopDNS) DeleteRecords(context.Context, string, []libdns.Record) ([]libdns.Record, error) {
	return nil, nil
}

func TestNewRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown mode", Config{Mode: "letsencrypt", Dir: dir, Domain: "aim.test"},
			`tls: unknown mode "letsencrypt": want off, internal or acme`},
		{"acme without domain", Config{Mode: ModeACME, Dir: dir},
			"tls: mode acme needs a domain (solutions are served at <name>.<domain>)"},
		{"internal without directory", Config{Mode: ModeInternal, Domain: "aim.test"},
			"tls: mode internal needs a data directory for its certificates"},
		{"domain is an IP", Config{Mode: ModeInternal, Dir: dir, Domain: "127.0.0.1"},
			`tls: domain "127.0.0.1" cannot be named in a certificate`},
		{"wildcard domain", Config{Mode: ModeInternal, Dir: dir, Domain: "*.aim.test"},
			`tls: domain "*.aim.test" cannot be named in a certificate`},
		{"Let's Encrypt for localhost", Config{Mode: ModeACME, Dir: dir, Domain: "localhost"},
			`tls: Let's Encrypt cannot issue for "localhost", which is internal; use --tls internal`},
		{"ACME settings without acme", Config{Mode: ModeInternal, Dir: dir, Domain: "aim.test", DNS01: nopDNS{}},
			"tls: ACME settings (CA, email, DNS provider) need mode acme, not internal"},
		{"negative HSTS", Config{Mode: ModeInternal, Dir: dir, Domain: "aim.test", HSTS: -time.Second},
			"tls: HSTS max-age -1s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(t.Context(), tc.cfg)
			if errString(err) != tc.wantErr {
				t.Errorf("New: %v\nwant: %s", err, tc.wantErr)
			}
		})
	}
}

func TestOff(t *testing.T) {
	m, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Enabled() || m.TLSConfig() != nil || m.CACertPEM() != nil {
		t.Errorf("off: Enabled %v, TLSConfig %v, CACertPEM %q; want false, nil, nil", m.Enabled(), m.TLSConfig(), m.CACertPEM())
	}
	rec := httptest.NewRecorder()
	m.CAHandler().ServeHTTP(rec, httptest.NewRequest("GET", "http://aim.test/ca.crt", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("off: CAHandler answered %d, want 404", rec.Code)
	}
	rec = httptest.NewRecorder()
	m.HSTS(m.HTTPHandler(app)).ServeHTTP(rec, httptest.NewRequest("GET", "http://demo.aim.test/", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Strict-Transport-Security") != "" {
		t.Errorf("off: %d, HSTS %q; want the app's 200 and no HSTS", rec.Code, rec.Header().Get("Strict-Transport-Security"))
	}
}

func TestDecide(t *testing.T) {
	sols := allow("demo")
	m := &Manager{cfg: Config{Domain: "aim.test", Allow: sols.Allow}}
	for _, tc := range []struct {
		name    string
		allowed bool
		asks    bool // whether Allow is asked
	}{
		{"aim.test", true, false},
		{"demo.aim.test", true, true},
		{"DEMO.aim.test", true, true},
		{"nope.aim.test", false, true},
		{"a.demo.aim.test", false, false},
		{"demoaim.test", false, false},
		{"example.com", false, false},
		{".aim.test", false, false},
		{"127.0.0.1", false, false},
	} {
		before := len(sols.Asked())
		err := m.decide(t.Context(), tc.name)
		if (err == nil) != tc.allowed {
			t.Errorf("decide(%q) = %v; want allowed %v", tc.name, err, tc.allowed)
		}
		if err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("decide(%q) = %v; want it to wrap ErrNotAllowed", tc.name, err)
		}
		if asked := len(sols.Asked()) > before; asked != tc.asks {
			t.Errorf("decide(%q) asked Allow: %v, want %v", tc.name, asked, tc.asks)
		}
	}
	nilAllow := &Manager{cfg: Config{Domain: "aim.test"}}
	if err := nilAllow.decide(t.Context(), "demo.aim.test"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("with a nil Allow, decide(demo.aim.test) = %v; want ErrNotAllowed", err)
	}
}

func TestHTTPHandler(t *testing.T) {
	for _, tc := range []struct {
		name      string
		httpsPort int
		method    string
		url       string
		host      string // overrides the URL's host in the Host header
		wantCode  int
		wantLoc   string
	}{
		{"GET on 443", 443, "GET", "http://demo.aim.test/a/b?c=d", "", 301, "https://demo.aim.test/a/b?c=d"},
		{"HEAD", 443, "HEAD", "http://demo.aim.test/", "", 301, "https://demo.aim.test/"},
		{"POST keeps its method", 443, "POST", "http://demo.aim.test/api", "", 308, "https://demo.aim.test/api"},
		{"DELETE", 443, "DELETE", "http://aim.test/api/v1/solutions/x", "", 308, "https://aim.test/api/v1/solutions/x"},
		{"other HTTPS port", 8443, "GET", "http://demo.aim.test:8080/", "", 301, "https://demo.aim.test:8443/"},
		{"escaped path", 443, "GET", "http://aim.test/a%20b/%2F", "", 301, "https://aim.test/a%20b/%2F"},
		{"IPv6 host", 443, "GET", "http://[::1]:8080/", "", 301, "https://[::1]/"},
		{"IPv6 host, other port", 8443, "GET", "http://[::1]/", "", 301, "https://[::1]:8443/"},
		{"no host", 443, "GET", "http://aim.test/", " ", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manager{cfg: Config{Mode: ModeInternal, HTTPSPort: tc.httpsPort}}
			req := httptest.NewRequest(tc.method, tc.url, nil)
			if tc.host != "" {
				req.Host = strings.TrimSpace(tc.host)
			}
			rec := httptest.NewRecorder()
			m.HTTPHandler(app).ServeHTTP(rec, req)
			if rec.Code != tc.wantCode || rec.Header().Get("Location") != tc.wantLoc {
				t.Errorf("%s %s: %d to %q; want %d to %q", tc.method, tc.url, rec.Code, rec.Header().Get("Location"), tc.wantCode, tc.wantLoc)
			}
		})
	}
}

func TestHSTS(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		tls  bool
		want string
	}{
		{"a year", Config{HSTS: 365 * 24 * time.Hour}, true, "max-age=31536000"},
		{"with subdomains", Config{HSTS: time.Hour, HSTSIncludeSubdomains: true}, true, "max-age=3600; includeSubDomains"},
		{"not over HTTP", Config{HSTS: time.Hour}, false, ""},
		{"zero is off", Config{}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Mode = ModeInternal
			m := &Manager{cfg: tc.cfg}
			req := httptest.NewRequest("GET", "https://aim.test/", nil)
			if !tc.tls {
				req.TLS = nil
			} else if req.TLS == nil {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			m.HSTS(app).ServeHTTP(rec, req)
			if got := rec.Header().Get("Strict-Transport-Security"); got != tc.want {
				t.Errorf("Strict-Transport-Security %q, want %q", got, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// loadCounter counts the reads of a Storage.
type loadCounter struct {
	certmagic.Storage
	loads atomic.Int64
}

func (s *loadCounter) Load(ctx context.Context, key string) ([]byte, error) {
	s.loads.Add(1)
	return s.Storage.Load(ctx, key)
}

// The challenge paths, which certmagic does not gate, look in storage (a
// Secret read in a cluster) only for names aim would ask a certificate
// for: anyone can send the others.
func TestChallengesLookOnlyForAllowedNames(t *testing.T) {
	st := &loadCounter{Storage: &certmagic.FileStorage{Path: t.TempDir()}}
	m, err := New(t.Context(), Config{Mode: ModeACME, Domain: "aim.test", ACMECA: "https://127.0.0.1:1/directory",
		Storage: st, Allow: allow("demo").Allow, HTTPPort: 8080, HTTPSPort: 8443, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	challenge := func(host string) int {
		rec := httptest.NewRecorder()
		m.HTTPHandler(app).ServeHTTP(rec, httptest.NewRequest("GET", "http://"+host+"/.well-known/acme-challenge/tok", nil))
		return rec.Code
	}
	if code := challenge("nope.aim.test"); code != http.StatusMovedPermanently || st.loads.Load() != 0 {
		t.Errorf("HTTP-01 for nope: %d after %d storage reads; want a redirect and none", code, st.loads.Load())
	}
	if _, err := m.TLSConfig().GetCertificate(&tls.ClientHelloInfo{ServerName: "nope.aim.test", SupportedProtos: []string{"acme-tls/1"}}); err == nil || st.loads.Load() != 0 {
		t.Errorf("TLS-ALPN-01 for nope: %v after %d storage reads; want an error and none", err, st.loads.Load())
	}
	// A solution's name is looked for, which is what the counter sees.
	challenge("demo.aim.test")
	if st.loads.Load() == 0 {
		t.Error("HTTP-01 for demo read nothing from storage: the count shows nothing")
	}
}
