package oidcop

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		text    string
		wantErr string
	}{
		{
			name: "yaml",
			file: "op.yaml",
			text: `issuer: http://127.0.0.1:5556
token_lifetime: 5m
clients:
  - id: aim
    secret: s3cret
    redirect_uris: [http://127.0.0.1:8080/callback]
    post_logout_redirect_uris: [http://127.0.0.1:8080/]
users:
  - {username: alice, password: pw, email: alice@example.test, name: Alice, groups: [admins]}
`,
		},
		{
			name: "json",
			file: "op.json",
			text: `{"issuer": "http://127.0.0.1:5556", "token_lifetime": "5m",
 "clients": [{"id": "aim", "secret": "s3cret", "redirect_uris": ["http://127.0.0.1:8080/callback"],
   "post_logout_redirect_uris": ["http://127.0.0.1:8080/"]}],
 "users": [{"username": "alice", "password": "pw", "email": "alice@example.test", "name": "Alice", "groups": ["admins"]}]}`,
		},
		{
			name:    "unknown field",
			file:    "op.yaml",
			text:    "issuer: http://127.0.0.1:5556\nclients:\n  - id: aim\n    secret: s\n    redirect_uri: http://x/cb\n",
			wantErr: "line 5: field redirect_uri not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, []byte(tt.text), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := LoadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != "http://127.0.0.1:5556" || cfg.TokenLifetime != 5*time.Minute ||
				len(cfg.Clients) != 1 || cfg.Clients[0].Secret != "s3cret" || cfg.Clients[0].PostLogoutRedirectURIs[0] != "http://127.0.0.1:8080/" ||
				len(cfg.Users) != 1 || cfg.Users[0].Groups[0] != "admins" || cfg.Users[0].Name != "Alice" {
				t.Errorf("decoded %+v", cfg)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	aim := Client{ID: "aim", Secret: "s", RedirectURIs: []string{"http://127.0.0.1:8080/callback"}}
	tests := []struct {
		name     string
		cfg      Config
		wantAddr string
		wantErr  string
	}{
		{name: "no issuer, no address", cfg: Config{Clients: []Client{aim}}, wantAddr: "127.0.0.1:0"},
		{name: "address from the issuer", cfg: Config{Issuer: "http://localhost:5556/oidc", Clients: []Client{aim}}, wantAddr: "localhost:5556"},
		{name: "default http port", cfg: Config{Issuer: "http://op.test", Clients: []Client{aim}}, wantAddr: "op.test:80"},
		{name: "address given", cfg: Config{Issuer: "https://op.test", Addr: "127.0.0.1:9000", Clients: []Client{aim}}, wantAddr: "127.0.0.1:9000"},
		{name: "issuer with a query", cfg: Config{Issuer: "http://op.test/?a=b", Clients: []Client{aim}}, wantErr: "without query"},
		{name: "issuer not http", cfg: Config{Issuer: "ftp://op.test", Clients: []Client{aim}}, wantErr: "not an http or https URL"},
		{name: "no clients", cfg: Config{}, wantErr: "no clients"},
		{name: "client without id", cfg: Config{Clients: []Client{{Secret: "s", RedirectURIs: aim.RedirectURIs}}}, wantErr: "no id"},
		{name: "client without secret", cfg: Config{Clients: []Client{{ID: "aim", RedirectURIs: aim.RedirectURIs}}}, wantErr: "no secret"},
		{name: "client without redirect URIs", cfg: Config{Clients: []Client{{ID: "aim", Secret: "s"}}}, wantErr: "no redirect URIs"},
		{
			name:    "relative redirect URI",
			cfg:     Config{Clients: []Client{{ID: "aim", Secret: "s", RedirectURIs: []string{"/callback"}}}},
			wantErr: `"/callback" is not an absolute`,
		},
		{
			name:    "bad post-logout URI",
			cfg:     Config{Clients: []Client{{ID: "aim", Secret: "s", RedirectURIs: aim.RedirectURIs, PostLogoutRedirectURIs: []string{"x:"}}}},
			wantErr: `"x:" is not an absolute`,
		},
		{name: "client twice", cfg: Config{Clients: []Client{aim, aim}}, wantErr: `client "aim" configured twice`},
		{name: "user without password", cfg: Config{Clients: []Client{aim}, Users: []User{{Username: "alice"}}}, wantErr: "no password"},
		{name: "user without name", cfg: Config{Clients: []Client{aim}, Users: []User{{Password: "pw"}}}, wantErr: "no username"},
		{
			name:    "user twice",
			cfg:     Config{Clients: []Client{aim}, Users: []User{{Username: "a", Password: "p"}, {Username: "a", Password: "q"}}},
			wantErr: `user "a" configured twice`,
		},
		{name: "negative lifetime", cfg: Config{Clients: []Client{aim}, TokenLifetime: -time.Second}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.cfg.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Addr != tt.wantAddr || cfg.GroupsClaim != "groups" || cfg.TokenLifetime != time.Hour || cfg.Logger == nil {
				t.Errorf("addr %q groups claim %q lifetime %s logger %v; want addr %q and the defaults", cfg.Addr, cfg.GroupsClaim, cfg.TokenLifetime, cfg.Logger, tt.wantAddr)
			}
		})
	}
}
