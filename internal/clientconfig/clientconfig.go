// Package clientconfig reads and writes the CLI's configuration: which
// aim server to talk to and with which token.
package clientconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config is the CLI's configuration file.
type Config struct {
	Server string `json:"server"`
	Token  string `json:"token,omitempty"`
}

// DefaultPath is $XDG_CONFIG_HOME/aim/config.json, or ~/.config/aim/config.json.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the config directory: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "aim", "config.json"), nil
}

// Load reads the configuration at path; a missing file is an empty Config.
func Load(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("reading %s: %w", path, err)
	}
	return c, nil
}

// Save writes the configuration, readable by its owner only: it holds a
// token.
func Save(path string, c Config) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
