package gateway

import (
	"net/http"
	"reflect"
	"testing"
)

func TestSafeSetCookie(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"host-only passes", "a=1; Path=/; HttpOnly", "a=1; Path=/; HttpOnly", true},
		{"parent domain made host-only", "track=x; Domain=example.com; Path=/; Secure", "track=x; Path=/; Secure", true},
		{"leading dot, odd case", "t=1; path=/; DOMAIN=.example.com", "t=1; path=/", true},
		{"domain alone", "t=1;Domain=example.com", "t=1", true},
		{"a value that says domain", "note=domain; Path=/", "note=domain; Path=/", true},
		{"aim's session name", "__Host-aim_session=evil; Path=/; Secure", "", false},
		{"aim's solution cookie", "__Host-aim_sol=evil; Path=/; Secure", "", false},
		{"aim prefix without __Host-", "aim_session=evil; Domain=example.com", "", false},
		{"aim in upper case", "AIM_x=1", "", false},
		{"__Secure- prefix", "__Secure-aim_x=1", "", false},
		{"other names with aim inside", "claim_id=1", "claim_id=1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := safeSetCookie(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("safeSetCookie(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestStripCredentials(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"nothing of aim's", http.Header{"Cookie": {"a=1; b=2"}, "Authorization": {"Bearer app"}},
			http.Header{"Cookie": {"a=1; b=2"}, "Authorization": {"Bearer app"}}},
		{"token header", http.Header{"X-Aim-Token": {"aim_secret"}, "Authorization": {"Bearer app"}},
			http.Header{"Authorization": {"Bearer app"}}},
		{"aim cookies among others", http.Header{"Cookie": {"a=1; __Host-aim_sol=s; b=2", "aim_session=x"}},
			http.Header{"Cookie": {"a=1; b=2"}}},
		{"only aim cookies", http.Header{"Cookie": {"__Host-aim_session=s; __Host-aim_sol=t"}}, http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stripCredentials(tc.in)
			if !reflect.DeepEqual(tc.in, tc.want) {
				t.Errorf("got %v, want %v", tc.in, tc.want)
			}
		})
	}
}

func FuzzSafeSetCookie(f *testing.F) {
	f.Add("a=1; Domain=example.com; Path=/")
	f.Add("__Host-aim_sol=1")
	f.Fuzz(func(t *testing.T, v string) {
		out, ok := safeSetCookie(v)
		if !ok {
			return
		}
		// What passes is never wider than host-only, nor one of aim's.
		for _, c := range (&http.Response{Header: http.Header{"Set-Cookie": {out}}}).Cookies() {
			if c.Domain != "" {
				t.Fatalf("%q passed as %q with Domain %q", v, out, c.Domain)
			}
			if isAimCookie(c.Name) {
				t.Fatalf("%q passed as %q, one of aim's cookies", v, out)
			}
		}
	})
}
