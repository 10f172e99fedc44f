package kubegateway

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// certFiles serves a certificate that something else keeps current in
// files, as cert-manager does through a mounted Secret: it is read again
// when the files change, looked at no more than every recheck.
type certFiles struct {
	certPath, keyPath string
	recheck           time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	mtime   time.Time
	checked time.Time
}

func newCertFiles(certPath, keyPath string) (*certFiles, error) {
	c := &certFiles{certPath: certPath, keyPath: keyPath, recheck: 10 * time.Second}
	if _, err := c.get(nil); err != nil {
		return nil, err
	}
	return c, nil
}

// get implements tls.Config.GetCertificate.
func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.cert != nil && now.Sub(c.checked) < c.recheck {
		return c.cert, nil
	}
	c.checked = now
	fi, err := os.Stat(c.certPath)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // mid-update; keep the one we have
		}
		return nil, fmt.Errorf("reading the TLS certificate: %w", err)
	}
	if c.cert != nil && !fi.ModTime().After(c.mtime) {
		return c.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil
		}
		return nil, fmt.Errorf("loading the TLS certificate %s and key %s: %w", c.certPath, c.keyPath, err)
	}
	c.cert, c.mtime = &cert, fi.ModTime()
	return c.cert, nil
}

// redirectToHTTPS sends requests for the domain and its solutions to
// HTTPS on the standard port (the gateway's Service maps 443 to the
// pods' HTTPS port), and serves everything else (the kubelet's probes and Prometheus,
// which address the pod by its IP) over plain HTTP.
func redirectToHTTPS(domain string, next http.Handler) http.Handler {
	suffix := "." + strings.ToLower(domain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		if host != strings.ToLower(domain) && !strings.HasSuffix(host, suffix) {
			next.ServeHTTP(w, r)
			return
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}

// fileCerts serves HTTPS from certificate files (cert-manager's wildcard);
// plain HTTP redirects the domain's requests.
type fileCerts struct {
	files  *certFiles
	domain string
}

func (c *fileCerts) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.files.get, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
}

func (c *fileCerts) HTTPHandler(next http.Handler) http.Handler {
	return redirectToHTTPS(c.domain, next)
}

func (c *fileCerts) HSTS(next http.Handler) http.Handler { return next }
