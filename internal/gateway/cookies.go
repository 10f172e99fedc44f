package gateway

import (
	"net/http"
	"strings"
)

// Every solution is a subdomain of the platform's domain, and its code is
// a tenant's: it may set cookies for the parent domain (which the browser
// then sends to the apex and to every other solution) and read every
// cookie and header the browser sends it. The gateway therefore
//   - removes aim's own credentials from what it forwards to a solution:
//     the X-Aim-Token header and aim's cookies, whatever their host;
//   - makes every cookie a solution sets host-only (its Domain attribute
//     dropped), so that it reaches that solution's host alone, and drops
//     any cookie a solution sets under one of aim's cookie names.
// aim's own cookies are __Host- cookies besides (host-only, Secure, Path=/
// by the browser's rules), which no subdomain can set or overwrite, and
// aim's pages trust no other. docs/security.md has the whole design.

// TokenHeader carries a visitor's personal access token to a private
// solution, beside the solution's own Authorization header, which the
// gateway leaves alone.
const TokenHeader = "X-Aim-Token"

// SolutionCookie is the per-solution session cookie of a private
// solution, host-only on that solution's host.
const SolutionCookie = "__Host-aim_sol"

// SignInPath, on a private solution's host, takes the one-time code the
// platform's sign-in hands over and turns it into SolutionCookie. The
// path is the platform's on every solution's host.
const SignInPath = "/.aim/signin"

// isAimCookie reports whether a cookie name is one of aim's: those start
// "aim_" (or carry the __Host- or __Secure- prefix before it).
func isAimCookie(name string) bool {
	name = strings.TrimPrefix(strings.TrimPrefix(name, "__Host-"), "__Secure-")
	return strings.HasPrefix(strings.ToLower(name), "aim_")
}

// stripCredentials removes aim's credentials from a request bound for a
// solution: TokenHeader and aim's cookies (the others pass as they came).
func stripCredentials(h http.Header) {
	delete(h, TokenHeader)
	cookies := h["Cookie"]
	if len(cookies) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, line := range cookies {
		var parts []string
		for part := range strings.SplitSeq(line, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if isAimCookie(name) {
				changed = true
				continue
			}
			if p := strings.TrimSpace(part); p != "" {
				parts = append(parts, p)
			}
		}
		if len(parts) > 0 {
			kept = append(kept, strings.Join(parts, "; "))
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// safeSetCookie returns a solution's Set-Cookie value as the gateway
// passes it on: without a Domain attribute, so that the cookie is
// host-only; ok is false for a cookie under one of aim's names, which is
// dropped.
func safeSetCookie(v string) (string, bool) {
	nameValue, attrs, _ := strings.Cut(v, ";")
	name, _, _ := strings.Cut(strings.TrimSpace(nameValue), "=")
	if isAimCookie(strings.TrimSpace(name)) {
		return "", false
	}
	if !strings.Contains(strings.ToLower(attrs), "domain") {
		return v, true
	}
	out := []string{strings.TrimSpace(nameValue)}
	for a := range strings.SplitSeq(attrs, ";") {
		key, _, _ := strings.Cut(strings.TrimSpace(a), "=")
		if strings.EqualFold(strings.TrimSpace(key), "domain") || strings.TrimSpace(a) == "" {
			continue
		}
		out = append(out, strings.TrimSpace(a))
	}
	return strings.Join(out, "; "), true
}

// safeSetCookies filters a response's Set-Cookie values in place.
func safeSetCookies(h http.Header) {
	vv := h["Set-Cookie"]
	if len(vv) == 0 {
		return
	}
	kept := vv[:0:0]
	for _, v := range vv {
		if s, ok := safeSetCookie(v); ok {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		delete(h, "Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
