package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	config := filepath.Join(t.TempDir(), "op.yaml")
	os.WriteFile(config, []byte(`addr: 127.0.0.1:0
clients:
  - {id: aim, secret: s, redirect_uris: ["http://127.0.0.1:8080/callback"]}
`), 0o600)
	tests := []struct {
		name string
		args []string
	}{
		{name: "flags", args: []string{"-addr", "127.0.0.1:0", "-redirect-uri", "http://127.0.0.1:8080/callback"}},
		{name: "config file", args: []string{"-config", config}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			out, w := io.Pipe()
			var stderr strings.Builder
			done := make(chan error, 1)
			go func() { done <- run(ctx, tt.args, w, &stderr); w.Close() }()

			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the issuer: %v (stderr: %s)", err, stderr.String())
			}
			issuer := strings.TrimSpace(line)
			if !strings.HasPrefix(issuer, "http://127.0.0.1:") {
				t.Fatalf("first line %q, want the issuer", line)
			}
			go io.Copy(io.Discard, out)
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get(issuer + "/.well-known/openid-configuration")
			if err != nil {
				t.Fatal(err)
			}
			var d struct{ Issuer string }
			json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			if d.Issuer != issuer {
				t.Errorf("discovery says issuer %q, want %q", d.Issuer, issuer)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
}

func TestRunRefuses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    error
		wantMsg string
	}{
		{name: "no client", args: nil, want: errUsage},
		{name: "unknown flag", args: []string{"-nope"}, want: errUsage},
		{name: "stray argument", args: []string{"-redirect-uri", "http://x/cb", "extra"}, want: errUsage},
		{name: "missing config file", args: []string{"-config", "/nonexistent/op.yaml"}, wantMsg: "no such file"},
		{name: "bad redirect URI", args: []string{"-addr", "127.0.0.1:0", "-redirect-uri", "/cb"}, wantMsg: "not an absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			err := run(t.Context(), tt.args, io.Discard, &stderr)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("run: %v, want %v (stderr: %s)", err, tt.want, stderr.String())
			}
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("run: %v, want an error with %q", err, tt.wantMsg)
			}
		})
	}
}
