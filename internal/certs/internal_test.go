package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestInternalMode serves a solution's name with the internal CA to a
// client that trusts only that CA, over HTTP/2, with HSTS, and refuses
// a name that is not a solution's.
func TestInternalMode(t *testing.T) {
	dir := t.TempDir()
	g := listen(t)
	sols := allow("demo")
	m, err := New(t.Context(), Config{
		Mode:      ModeInternal,
		Dir:       dir,
		Domain:    "aim.test",
		Allow:     sols.Allow,
		HTTPPort:  g.httpPort(),
		HTTPSPort: g.httpsPort(),
		HSTS:      365 * 24 * time.Hour,
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.serve(t, m, app)

	caPEM := m.CACertPEM()
	only := x509.NewCertPool()
	if !only.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CACertPEM is not a PEM certificate:\n%s", caPEM)
	}
	rec := httptest.NewRecorder()
	m.CAHandler().ServeHTTP(rec, httptest.NewRequest("GET", "https://aim.test/ca.crt", nil))
	if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), caPEM) || rec.Header().Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Errorf("CAHandler: %d %q, %d bytes; want 200, the CA's PEM", rec.Code, rec.Header().Get("Content-Type"), rec.Body.Len())
	}
	url := fmt.Sprintf("https://demo.aim.test:%d/", g.httpsPort())

	// Handshakes that arrive together for a new name share one issuance.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			resp, err := client(only).Get(url)
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
			case string(body) != "hello from "+fmt.Sprintf("demo.aim.test:%d", g.httpsPort()):
				errs[i] = fmt.Errorf("body %q", body)
			case resp.Header.Get("Strict-Transport-Security") != "max-age=31536000":
				errs[i] = fmt.Errorf("Strict-Transport-Security %q, want max-age=31536000", resp.Header.Get("Strict-Transport-Security"))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("GET %s trusting only the internal CA: %v", url, err)
	}
	if n := m.obtaining.Load(); n != 1 {
		t.Errorf("8 concurrent first requests issued %d certificates, want 1", n)
	}

	leaf, err := handshake(t.Context(), g, "demo.aim.test", only)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(leaf.DNSNames, []string{"demo.aim.test"}) {
		t.Errorf("leaf names %v, want [demo.aim.test]", leaf.DNSNames)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 8*24*time.Hour {
		t.Errorf("leaf lives %s; want about a week", life)
	}

	// The system's roots do not know the internal CA.
	_, err = client(nil).Get(url)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("GET %s with the system's roots: err = %v, want an unknown authority", url, err)
	}

	// A name that is no solution gets no certificate, and fast.
	start := time.Now()
	if _, err := handshake(t.Context(), g, "nope.aim.test", only); err == nil {
		t.Error("handshake for nope.aim.test succeeded; want it refused")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing nope.aim.test took %s", d)
	}
	// Names outside the domain or deeper in it never reach Allow.
	for _, name := range []string{"a.demo.aim.test", "example.com"} {
		if _, err := handshake(t.Context(), g, name, only); err == nil {
			t.Errorf("handshake for %s succeeded; want it refused", name)
		}
	}
	if got := sols.Asked(); !slices.Contains(got, "nope") || slices.ContainsFunc(got, func(s string) bool { return s != "demo" && s != "nope" }) {
		t.Errorf("Allow was asked %v; want only demo and nope", got)
	}
	if n := m.obtaining.Load(); n != 1 {
		t.Errorf("%d issuances after refusals, want still 1", n)
	}

	// The apex is always allowed.
	if _, err := handshake(t.Context(), g, "aim.test", only); err != nil {
		t.Errorf("handshake for the apex: %v", err)
	}

	// Plain HTTP redirects to HTTPS.
	resp, err := client(only).Get(fmt.Sprintf("http://demo.aim.test:%d/x?y=1", g.httpPort()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := fmt.Sprintf("https://demo.aim.test:%d/x?y=1", g.httpsPort()); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("GET over HTTP: %s to %q, want 301 to %q", resp.Status, resp.Header.Get("Location"), want)
	}
	if h := resp.Header.Get("Strict-Transport-Security"); h != "" {
		t.Errorf("HSTS header %q over plain HTTP; want none", h)
	}

	// The CA is kept: a restart serves with the same one, and the key
	// is private.
	m2, err := New(t.Context(), Config{Mode: ModeInternal, Dir: dir, Domain: "aim.test", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m2.CACertPEM(), caPEM) {
		t.Error("a second Manager on the same directory made a new CA")
	}
	fi, err := os.Stat(filepath.Join(dir, "ca", "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
}
