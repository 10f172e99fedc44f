package edge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testCerts is a self-signed certificate for "localhost" whose plain
// handler redirects, marking what it wrapped.
type testCerts struct{ cert tls.Certificate }

func (c *testCerts) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.cert}}
}

func (c *testCerts) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://"+r.Host+r.URL.Path, http.StatusMovedPermanently)
	})
}

func (c *testCerts) HSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=60")
		next.ServeHTTP(w, r)
	})
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from ", r.Host) })

func TestEdge(t *testing.T) {
	noRedirect := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	for _, tc := range []struct {
		name          string
		tls, loopback bool
		// host is the Host header of the plain request.
		host             string
		wantPlain        int
		wantPlainBody    string
		wantHTTPS, wantH bool
	}{
		{name: "plain only", host: "a.localhost", wantPlain: 200, wantPlainBody: "hello from a.localhost"},
		{name: "TLS redirects plain", tls: true, host: "a.localhost", wantPlain: 301, wantHTTPS: true, wantH: true},
		{name: "TLS keeps loopback plain", tls: true, loopback: true, host: "127.0.0.1", wantPlain: 200, wantPlainBody: "hello from 127.0.0.1", wantHTTPS: true, wantH: true},
		{name: "TLS redirects a name with loopback on", tls: true, loopback: true, host: "a.localhost", wantPlain: 301, wantHTTPS: true, wantH: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Listen(Config{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", LoopbackPlain: tc.loopback}, tc.tls)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			var cs Certificates
			if tc.tls {
				cs = &testCerts{cert: selfSigned(t)}
			}
			errs, err := e.Serve(hello, cs)
			if err != nil {
				t.Fatal(err)
			}
			httpPort, httpsPort := e.Ports()
			if (httpsPort != 0) != tc.tls {
				t.Fatalf("https port %d with tls %v", httpsPort, tc.tls)
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/x", httpPort), nil)
			req.Host = tc.host
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantPlain || !strings.Contains(string(body), tc.wantPlainBody) {
				t.Errorf("plain: %d %q, want %d %q", resp.StatusCode, body, tc.wantPlain, tc.wantPlainBody)
			}
			if tc.wantHTTPS {
				resp, err := noRedirect.Get(fmt.Sprintf("https://127.0.0.1:%d/", httpsPort))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || (resp.Header.Get("Strict-Transport-Security") != "") != tc.wantH {
					t.Errorf("https: %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
				}
			}
			if err := e.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			for range 1 + btoi(tc.tls) {
				if err := <-errs; err != http.ErrServerClosed {
					t.Errorf("serve: %v, want ErrServerClosed", err)
				}
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestServeNeedsListenerForCerts(t *testing.T) {
	e, err := Listen(Config{HTTP: "127.0.0.1:0"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Serve(hello, &testCerts{}); err == nil {
		t.Fatal("Serve with certificates but no HTTPS listener: no error")
	}
}
