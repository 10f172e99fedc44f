package cli

import (
	"strings"
	"testing"

	"github.com/aimhub/aim/internal/kube/kubegateway"
)

func TestValidateGatewayTicketKeys(t *testing.T) {
	tests := []struct {
		name string
		o    kubegateway.GatewayOptions
		err  string // "" means valid
	}{
		{"with certificate files", kubegateway.GatewayOptions{TLSCertFile: "c", TLSKeyFile: "k", TicketKeysSecret: "aim-system/keys"}, ""},
		{"with ACME", kubegateway.GatewayOptions{TLS: "acme", TicketKeysSecret: "aim-system/keys"}, ""},
		{"without HTTPS", kubegateway.GatewayOptions{TicketKeysSecret: "aim-system/keys"}, "needs HTTPS"},
		{"no namespace", kubegateway.GatewayOptions{TLS: "acme", TicketKeysSecret: "keys"}, "want namespace/name"},
		{"a path", kubegateway.GatewayOptions{TLS: "acme", TicketKeysSecret: "a/b/c"}, "want namespace/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateGateway(tt.o)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("validateGateway: %v, want %q", err, tt.err)
			}
		})
	}
}
