package operator

import (
	"strings"
	"testing"
)

// TestOptionsCIDRs: the operator refuses at start the CIDRs an ipBlock
// would refuse, or that would do nothing, saying which and why.
func TestOptionsCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name       string
		deny, dns  []string
		wantErrors []string // none means valid
	}{
		{"valid", []string{"192.0.2.0/24", "198.51.100.7/32"}, []string{"169.254.20.10/32", "fd00::10/128"}, nil},
		{"a bare address", []string{"192.0.2.7"}, nil,
			[]string{`egress deny: "192.0.2.7" is not a CIDR like 192.0.2.0/24 (a single address is 192.0.2.1/32)`}},
		{"host bits", []string{"192.0.2.7/24"}, []string{"169.254.20.10/16"},
			[]string{`egress deny: "192.0.2.7/24" has bits set past its prefix length: write 192.0.2.0/24`,
				`DNS CIDRs: "169.254.20.10/16" has bits set past its prefix length: write 169.254.0.0/16`}},
		{"IPv6 to deny", []string{"2001:db8::/32"}, nil,
			[]string{`egress deny: "2001:db8::/32" is not IPv4: solutions reach nothing over IPv6`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.EgressDeny, o.DNSCIDRs = tc.deny, tc.dns
			err := o.withDefaults().validate()
			if len(tc.wantErrors) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wantErrors {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}
