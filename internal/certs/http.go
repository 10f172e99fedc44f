package certs

import (
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/certmagic"
)

// HTTPHandler is the handler for the plain-HTTP listener. With TLS off
// it is next. Otherwise it answers ACME HTTP-01 challenges and redirects
// every other request to the same URL over HTTPS: 301 for GET and HEAD,
// 308 for the rest so that clients repeat the method and body.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	if !m.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.HandleHTTPChallenge(w, r) {
			return
		}
		host := hostOnly(r.Host)
		if host == "" || strings.ContainsAny(host, "/\\@") {
			http.Error(w, "aim serves HTTPS only, and the request names no host to redirect to", http.StatusBadRequest)
			return
		}
		if m.cfg.HTTPSPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(m.cfg.HTTPSPort))
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]" // an IPv6 literal
		}
		code := http.StatusPermanentRedirect
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			code = http.StatusMovedPermanently
		}
		// Only the path and query are taken from the request: RequestURI
		// may be an absolute URL naming another host.
		target := "https://" + host + r.URL.EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, code)
	})
}

// HandleHTTPChallenge answers r if it is an ACME HTTP-01 challenge
// request this Manager, or another sharing its Storage, is solving, and
// reports whether it did. For a plain listener that redirects by rules
// of its own (the gateway in a cluster) instead of HTTPHandler's.
//
// A challenge for a name aim would never ask a certificate for is not
// looked up: certmagic would look for it in storage, a Secret read in a
// cluster, for any Host anyone sends.
func (m *Manager) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m.acme == nil || !certmagic.LooksLikeHTTPChallenge(r) || m.decide(r.Context(), hostOnly(r.Host)) != nil {
		return false
	}
	return m.acme.HandleHTTPChallenge(w, r)
}

// hostOnly is a Host header without its port or an IPv6 literal's
// brackets.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// HSTS adds the Strict-Transport-Security header to responses to HTTPS
// requests, when Config.HSTS is set; otherwise it is next.
func (m *Manager) HSTS(next http.Handler) http.Handler {
	if !m.Enabled() || m.cfg.HSTS <= 0 {
		return next
	}
	value := "max-age=" + strconv.FormatInt(int64(m.cfg.HSTS.Seconds()), 10)
	if m.cfg.HSTSIncludeSubdomains {
		value += "; includeSubDomains"
	}
	return &hsts{next: next, value: value, h: http.Header{"Strict-Transport-Security": {value}}}
}

// hsts is HSTS's handler. Unwrap and TLSHeaders let the gateway's fast
// path serve next and add the header itself.
type hsts struct {
	next  http.Handler
	value string
	h     http.Header
}

func (s *hsts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browsers ignore the header over HTTP (RFC 6797 §8.1), and sending
	// it there would claim something the channel cannot.
	if r.TLS != nil {
		w.Header().Set("Strict-Transport-Security", s.value)
	}
	s.next.ServeHTTP(w, r)
}

// Unwrap is the handler HSTS wraps.
func (s *hsts) Unwrap() http.Handler { return s.next }

// TLSHeaders are the headers it adds over TLS; not to be changed.
func (s *hsts) TLSHeaders() http.Header { return s.h }

// CAHandler serves the internal CA's certificate for clients to install
// (a browser offers to trust it); 404 in the other modes.
func (m *Manager) CAHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.ca == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/x-x509-ca-cert")
		w.Header().Set("Content-Disposition", `attachment; filename="aim-`+m.cfg.Domain+`-ca.crt"`)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(m.ca.certPEM)
	})
}
