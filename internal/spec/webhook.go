package spec

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// CheckWebhookURL says why a provider's webhook URL is refused: not
// http(s), or naming an address the platform must never send to from
// inside (loopback, link-local and with it the cloud's metadata address,
// unspecified, multicast). A name is checked again at each delivery,
// against what it resolves to then (see inquiry's safeDialer), so DNS cannot turn
// it into such an address later.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("webhook %q is not an http(s) URL without credentials", raw)
	}
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && ForbiddenWebhookAddr(a) {
		return fmt.Errorf("webhook %q points at %s, a %s address aim never sends to", raw, a, AddrKind(a))
	}
	if h := strings.ToLower(u.Hostname()); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("webhook %q points at this machine (localhost)", raw)
	}
	return nil
}

// ForbiddenWebhookAddr reports whether a webhook must never be sent to a.
func ForbiddenWebhookAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast()
}

// AddrKind names the kind of a forbidden address, for messages.
func AddrKind(a netip.Addr) string {
	switch a = a.Unmap(); {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsUnspecified():
		return "unspecified"
	}
	return "multicast"
}
