// Package certstore keeps certmagic's storage in Kubernetes: every key
// (certificates, their keys and metadata, the ACME account, challenge
// tokens) in a Secret of one namespace, and its locks in Leases
// (coordination.k8s.io). Every replica of the gateway in a cluster uses
// the same Storage, so a certificate one replica obtained is served by
// all, only one of them asks the CA for a given name at a time, and any
// replica answers an HTTP-01 or TLS-ALPN-01 challenge another started
// (certmagic's distributed solving reads the challenge from storage).
//
// A key maps to the Secret <Prefix>-<readable part>-<hash>: the readable
// part is the key's last element reduced to what a name may hold, the
// hash (64 bits of SHA-256 of the whole key) keeps names unique. The key
// itself is in the annotation aim.dev/cert-storage-key and every such
// Secret carries the label aim.dev/cert-storage=<Prefix>. The labels
// aim.dev/cert-storage-d<N> hold a hash of the key's first N elements,
// for each directory it is in (up to maxDepth), so that listing a
// directory asks the API server for the Secrets under it only:
// certmagic's storage cleaning lists each site's directory in turn, which
// would otherwise read every Secret once per site.
package certstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/caddyserver/certmagic"
)

const (
	// LabelStorage marks a Secret as a key of the Storage named by its
	// value (Config.Prefix).
	LabelStorage = "aim.dev/cert-storage"
	// AnnotationKey holds a Secret's storage key.
	AnnotationKey = "aim.dev/cert-storage-key"
	// AnnotationModified is when the key was last stored (RFC 3339).
	AnnotationModified = "aim.dev/cert-storage-modified"
	// SecretType is the type of the Secrets a Storage writes.
	SecretType corev1.SecretType = "aim.dev/cert-storage"
	// dataKey is the Secret's data entry that holds the value.
	dataKey = "value"
	// maxDepth is how many directory levels are labelled; certmagic's
	// keys have up to four. Deeper directories are listed by reading
	// all of the storage's Secrets.
	maxDepth = 6
)

// Config configures a Storage. Zero values take the defaults named.
type Config struct {
	// Namespace holds the Secrets and Leases. Required.
	Namespace string
	// Prefix begins every Secret's and Lease's name and is the value of
	// their LabelStorage label. Empty means "aim-certs".
	Prefix string
	// LockTTL is how long a lock whose holder stopped renewing it (a
	// crashed replica) blocks others before it is taken over; a holder
	// renews it every LockTTL/4. It is compared with the Lease's renew
	// time by the clock of the replica that waits, so the replicas'
	// clocks must agree to well within it. Zero means 30s; at least 1s.
	LockTTL time.Duration
	// LockPoll is how often a waiting Lock looks at the Lease again. Zero
	// means 1s.
	LockPoll time.Duration
	// Identity names this process in the Leases it holds (each Lock adds
	// a random suffix). Empty means the host name (the pod's name).
	Identity string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Storage is a certmagic.Storage in Secrets, with a certmagic.Locker in
// Leases.
type Storage struct {
	cfg     Config
	secrets corev1client.SecretInterface
	leases  coordinationv1client.LeaseInterface
	log     *slog.Logger

	mu   sync.Mutex
	held map[string]*heldLock // by lock name
}

var _ certmagic.Storage = (*Storage)(nil)

// New returns a Storage in cfg.Namespace.
func New(kc kubernetes.Interface, cfg Config) (*Storage, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("certificate storage: no namespace")
	}
	cfg.Prefix = cmp.Or(cfg.Prefix, "aim-certs")
	if errs := validName(cfg.Prefix); errs != "" {
		return nil, fmt.Errorf("certificate storage: prefix %q: %s", cfg.Prefix, errs)
	}
	cfg.LockTTL = cmp.Or(cfg.LockTTL, 30*time.Second)
	if cfg.LockTTL < time.Second {
		return nil, fmt.Errorf("certificate storage: lock TTL %s is under a second (Leases count whole seconds)", cfg.LockTTL)
	}
	cfg.LockPoll = cmp.Or(cfg.LockPoll, time.Second)
	if cfg.Identity == "" {
		cfg.Identity, _ = os.Hostname()
		cfg.Identity = cmp.Or(cfg.Identity, "aim")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Storage{
		cfg:     cfg,
		secrets: kc.CoreV1().Secrets(cfg.Namespace),
		leases:  kc.CoordinationV1().Leases(cfg.Namespace),
		log:     cfg.Logger.With(slog.String("storage", cfg.Namespace+"/"+cfg.Prefix)),
		held:    map[string]*heldLock{},
	}, nil
}

// validName says what is wrong with a name prefix, or "".
func validName(p string) string {
	if len(p) > 100 {
		return "longer than 100 characters"
	}
	for i, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0) {
			return "use lower-case letters, digits and '-', beginning with a letter or digit"
		}
	}
	return ""
}

// objectName is the Secret's (or Lease's) name for a key: the prefix,
// the key's last element as far as a name can show it, and a hash of the
// whole key.
func (s *Storage) objectName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(path.Base(key)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	readable := strings.Trim(b.String(), "-")
	if len(readable) > 40 {
		readable = strings.Trim(readable[len(readable)-40:], "-")
	}
	name := s.cfg.Prefix + "-"
	if readable != "" {
		name += readable + "-"
	}
	return name + hash16(key)
}

func normKey(key string) string { return strings.Trim(key, "/") }

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// dirLabel is the label that holds the hash of a key's directory at
// depth n (1: its first element).
func dirLabel(n int) string { return fmt.Sprintf("%s-d%d", LabelStorage, n) }

// labels are a key's Secret's labels: the storage, and each directory the
// key is in.
func (s *Storage) labels(key string) map[string]string {
	l := map[string]string{LabelStorage: s.cfg.Prefix, "app.kubernetes.io/managed-by": "aim"}
	parts := strings.Split(key, "/")
	for n := 1; n < len(parts) && n <= maxDepth; n++ {
		l[dirLabel(n)] = hash16(strings.Join(parts[:n], "/"))
	}
	return l
}

func notExist(key string) error { return fmt.Errorf("%s: %w", key, fs.ErrNotExist) }

// get is the Secret of key; fs.ErrNotExist if there is none.
func (s *Storage) get(ctx context.Context, key string) (*corev1.Secret, error) {
	sec, err := s.secrets.Get(ctx, s.objectName(key), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, notExist(key)
	case err != nil:
		return nil, fmt.Errorf("reading the Secret of %s: %w", key, err)
	case sec.Annotations[AnnotationKey] != key:
		// Another key with the same 64-bit hash, or a Secret someone
		// else made with this name: not ours to read.
		return nil, notExist(key)
	}
	return sec, nil
}

// Store puts value at key, creating or replacing its Secret.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	key = normKey(key)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        s.objectName(key),
			Namespace:   s.cfg.Namespace,
			Labels:      s.labels(key),
			Annotations: map[string]string{AnnotationKey: key, AnnotationModified: now},
		},
		Type: SecretType,
		Data: map[string][]byte{dataKey: value},
	}
	_, err := s.secrets.Create(ctx, sec, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("storing %s in Secret %s: %w", key, sec.Name, err)
		}
		return nil
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := s.secrets.Get(ctx, sec.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if k, ok := cur.Annotations[AnnotationKey]; !ok || k != key {
			return fmt.Errorf("the Secret is not this key's (its %s is %q)", AnnotationKey, k)
		}
		cur.Annotations[AnnotationModified] = now
		cur.Labels = sec.Labels
		cur.Data = sec.Data
		_, err = s.secrets.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("storing %s in Secret %s: %w", key, sec.Name, err)
	}
	return nil
}

// Load is the value at key; an error wrapping fs.ErrNotExist if none.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	sec, err := s.get(ctx, normKey(key))
	if err != nil {
		return nil, err
	}
	return sec.Data[dataKey], nil
}

// Delete removes key and every key under it (key/...). A key that is not
// there is no error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	key = normKey(key)
	var errs []error
	del := func(k string) {
		err := s.secrets.Delete(ctx, s.objectName(k), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s: %w", k, err))
		}
	}
	// A key is a file or a directory, never both (as in a file system):
	// a file goes in one call, which certmagic makes after every
	// challenge; only a key that is no file is listed as a directory.
	switch err := s.secrets.Delete(ctx, s.objectName(key), metav1.DeleteOptions{}); {
	case err == nil:
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	keys, err := s.keysUnder(ctx, key)
	if err != nil {
		return err
	}
	for _, k := range keys {
		del(k)
	}
	return errors.Join(errs...)
}

// Exists reports whether key is stored, or is a directory of stored keys.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// Stat describes key: a stored value (terminal), or a directory of them.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	key = normKey(key)
	sec, err := s.get(ctx, key)
	if err == nil {
		mod, perr := time.Parse(time.RFC3339Nano, sec.Annotations[AnnotationModified])
		if perr != nil {
			mod = sec.CreationTimestamp.Time
		}
		return certmagic.KeyInfo{Key: key, Modified: mod, Size: int64(len(sec.Data[dataKey])), IsTerminal: true}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return certmagic.KeyInfo{}, err
	}
	keys, err := s.keysUnder(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(keys) > 0 {
		return certmagic.KeyInfo{Key: key}, nil
	}
	return certmagic.KeyInfo{}, notExist(key)
}

// List names what is under dir, as certmagic's FileStorage does: its
// direct children (stored keys and directories) or, recursive, every
// key and directory below it. An error wrapping fs.ErrNotExist if there
// is nothing.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	dir = normKey(dir)
	keys, err := s.keysUnder(ctx, dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range keys {
		rest := k
		if dir != "" {
			rest = strings.TrimPrefix(k, dir+"/") // keysUnder keeps only those
		}
		parts := strings.Split(rest, "/")
		if !recursive {
			parts = parts[:1]
		}
		for i := range parts {
			seen[path.Join(dir, path.Join(parts[:i+1]...))] = true
		}
	}
	if len(seen) == 0 {
		return nil, notExist(dir)
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}

// keysUnder are the keys stored under dir (every key if dir is ""),
// read from the labelled Secrets a page at a time.
func (s *Storage) keysUnder(ctx context.Context, dir string) ([]string, error) {
	var keys []string
	selector := LabelStorage + "=" + s.cfg.Prefix
	if n := strings.Count(dir, "/") + 1; dir != "" && n <= maxDepth {
		selector += "," + dirLabel(n) + "=" + hash16(dir)
	}
	opts := metav1.ListOptions{LabelSelector: selector, Limit: 500}
	for {
		list, err := s.secrets.List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("listing the certificate Secrets: %w", err)
		}
		for _, sec := range list.Items {
			k, ok := sec.Annotations[AnnotationKey]
			if ok && sec.Name == s.objectName(k) && (dir == "" || strings.HasPrefix(k, dir+"/")) {
				keys = append(keys, k)
			}
		}
		if list.Continue == "" {
			return keys, nil
		}
		opts.Continue = list.Continue
	}
}

// String names the storage in certmagic's logs.
func (s *Storage) String() string {
	return "Secrets " + s.cfg.Namespace + "/" + s.cfg.Prefix + "-*"
}
