package spec

import "testing"

func TestCheckWebhookURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://hooks.example.com/aim": true,
		"http://10.1.2.3:8080/x":        true, // a receiver on a private network is allowed
		"ftp://example.com/":            false,
		"https://user:pw@example.com/":  false,
		"http://127.0.0.1:9/":           false,
		"http://[::1]/":                 false,
		"http://169.254.169.254/latest": false,
		"http://[fe80::1]/":             false,
		"http://0.0.0.0/":               false,
		"http://localhost:8080/":        false,
		"http://x.localhost/":           false,
		"not a url":                     false,
	} {
		if err := CheckWebhookURL(raw); (err == nil) != ok {
			t.Errorf("%s: %v, want ok=%v", raw, err, ok)
		}
	}
}
