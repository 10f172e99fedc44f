// Package seal encrypts solutions' secrets and providers' registry
// logins at rest, with NaCl secretbox (XSalsa20-Poly1305) under a key
// kept in a file apart from the database: a copy of the database alone,
// a backup or a PostgreSQL dump, shows no secret. Each value is sealed
// for its place (a secret's solution, owner and name; a login's owner
// and host), so that a sealed value copied into another row does not
// open there.
package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
)

// Key is the key secrets are sealed with.
type Key struct {
	k [32]byte
}

// keyPrefix starts the key file, which holds the key in base64 on one
// line: a file that is recognisably aim's, and can be copied as text.
const keyPrefix = "aim-secret-key-v1:"

// LoadKey reads the key file at path, or, when there is none, makes one
// with a new random key, readable by its owner only from its creation
// (never a moment with wider permissions). A key file that others may
// read is refused: the key opens every secret.
func LoadKey(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secret key: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("reading the secret key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s: its mode is %04o, so others than its owner may read it; make it 0600 (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	return parseKey(path, b)
}

func parseKey(path string, b []byte) (*Key, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), keyPrefix)
	raw, err := base64.StdEncoding.DecodeString(s)
	if !ok || err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("secret key %s: not an aim secret key (one line: %s and 32 bytes in base64)", path, keyPrefix)
	}
	k := &Key{}
	copy(k.k[:], raw)
	return k, nil
}

func createKey(path string) (*Key, error) {
	k := &Key{}
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("making the secret key: %w", err)
	}
	// O_EXCL: two aim processes starting at once do not each write a
	// key; the second reads the first's.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("making the secret key: %w", err)
	}
	_, err = f.WriteString(keyPrefix + base64.StdEncoding.EncodeToString(k.k[:]) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("making the secret key: %w", err)
	}
	return k, nil
}

// NewKey is a random key, for tests.
func NewKey() *Key {
	k := &Key{}
	if _, err := rand.Read(k.k[:]); err != nil {
		panic(err)
	}
	return k
}

// place derives the key of one place from k, so that a value sealed for
// one place opens nowhere else.
func (k *Key) place(place []string) *[32]byte {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("aim secret v1"))
	for _, p := range place {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	var out [32]byte
	copy(out[:], m.Sum(nil))
	return &out
}

// Seal encrypts value for place: a random nonce, then the box.
func (k *Key) Seal(value []byte, place ...string) []byte {
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return secretbox.Seal(nonce[:], value, &nonce, k.place(place))
}

// ErrOpen is a sealed value that does not open with this key for this
// place: another key, another place, or changed bytes.
var ErrOpen = errors.New("the secret does not open with this key (was the secret key file replaced?)")

// Open decrypts what Seal sealed for place.
func (k *Key) Open(sealed []byte, place ...string) ([]byte, error) {
	if len(sealed) < 24+secretbox.Overhead {
		return nil, ErrOpen
	}
	var nonce [24]byte
	copy(nonce[:], sealed[:24])
	out, ok := secretbox.Open(nil, sealed[24:], &nonce, k.place(place))
	if !ok {
		return nil, ErrOpen
	}
	return out, nil
}
