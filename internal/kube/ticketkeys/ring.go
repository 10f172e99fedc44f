// Package ticketkeys shares TLS session ticket keys among the gateway's
// replicas through one Kubernetes Secret, so that a ticket one replica
// issued resumes the session on any other, and rotates them on a period
// so that a ticket is accepted for a bounded time.
//
// Every key has a start: from then it encrypts new tickets, until the
// next key's start; it decrypts them until start+Lifetime. The Secret
// always holds the key after the current one too, written a whole
// Rotation ahead, so that every replica switches to it at its start by
// its own clock, already able to decrypt what the others issue with it.
// Any replica that finds the ring due (the next key began, or a key is
// past its lifetime, or the Secret is empty, corrupt or gone) writes the
// new ring with the resourceVersion it read: of two replicas at once one
// wins, the other reads the winner's ring. No lock is needed.
package ticketkeys

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// DataKey is the Secret's data entry holding the ring (JSON).
const DataKey = "ticket-keys.json"

// Config configures a Ring. Zero values take the defaults named.
type Config struct {
	// Namespace and Name are the Secret's. Required.
	Namespace, Name string
	// Rotation is how long a key encrypts new tickets. Zero means 12h
	// (Caddy's default rotation interval).
	Rotation time.Duration
	// Lifetime is how long after its start a key still decrypts tickets,
	// so a ticket is accepted for between Lifetime-Rotation and Lifetime
	// after it was issued. Zero means 36h; at least Rotation.
	Lifetime time.Duration
	// Poll is how often Run reads the Secret again. Zero means 1m.
	Poll time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger; nil means slog.Default(). Keys are never logged.
	Logger *slog.Logger
}

// Ring keeps the ticket keys of one Secret applied to the TLS configs
// it wrapped.
type Ring struct {
	cfg     Config
	secrets corev1client.SecretInterface
	log     *slog.Logger

	mu      sync.Mutex // serialises Sync
	applied []key      // what tls.Configs use now, current first
	bases   []wrapped
	// shared is false while the keys are this replica's own (the Secret
	// could not be read or written); logged on each change.
	shared bool
}

type wrapped struct {
	base *tls.Config
	cur  *atomic.Pointer[tls.Config]
}

// key is one ticket key and when it starts encrypting.
type key struct {
	Start time.Time `json:"start"`
	Key   []byte    `json:"key"`
}

// ring is the Secret's content.
type ring struct {
	Keys []key `json:"keys"`
}

// New returns a Ring of the Secret cfg names; Sync or Run fill it.
func New(kc kubernetes.Interface, cfg Config) (*Ring, error) {
	if cfg.Namespace == "" || cfg.Name == "" {
		return nil, errors.New("ticket keys: the Secret's namespace and name are required")
	}
	cfg.Rotation = cmp.Or(cfg.Rotation, 12*time.Hour)
	cfg.Lifetime = cmp.Or(cfg.Lifetime, 36*time.Hour)
	if cfg.Lifetime < cfg.Rotation {
		return nil, fmt.Errorf("ticket keys: lifetime %s is shorter than the rotation %s", cfg.Lifetime, cfg.Rotation)
	}
	cfg.Poll = cmp.Or(cfg.Poll, time.Minute)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Ring{
		cfg:     cfg,
		secrets: kc.CoreV1().Secrets(cfg.Namespace),
		log:     cfg.Logger.With(slog.String("secret", cfg.Namespace+"/"+cfg.Name)),
	}, nil
}

// TLSConfig is base serving with the ring's keys. It works through
// GetConfigForClient, not SetSessionTicketKeys on base, because
// http.Server.ServeTLS clones its config: keys set later on base would
// not reach the clone. Until the first Sync, Go's own keys are used.
// base must not set GetConfigForClient itself.
func (r *Ring) TLSConfig(base *tls.Config) *tls.Config {
	if base == nil {
		return nil
	}
	w := wrapped{base: base.Clone(), cur: new(atomic.Pointer[tls.Config])}
	r.mu.Lock()
	r.bases = append(r.bases, w)
	if len(r.applied) > 0 {
		w.cur.Store(withKeys(w.base, r.applied))
	}
	r.mu.Unlock()
	out := base.Clone()
	out.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return w.cur.Load(), nil // nil: out itself, with Go's keys
	}
	return out
}

func withKeys(base *tls.Config, ks []key) *tls.Config {
	c := base.Clone()
	tk := make([][32]byte, len(ks))
	for i, k := range ks {
		copy(tk[i][:], k.Key)
	}
	c.SetSessionTicketKeys(tk)
	return c
}

// Run syncs the ring every Poll until ctx ends. A failed Sync is logged
// and the gateway goes on with the keys it has.
func (r *Ring) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Poll)
	defer t.Stop()
	for {
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("syncing the TLS session ticket keys", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync reads the Secret, writes it if the ring is due (rotation, expiry,
// or nothing usable in it) and applies its keys. When the Secret cannot
// be read or written the replica rotates keys of its own, not shared,
// and the error says why.
func (r *Ring) Sync(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	for range 3 { // a conflict means another replica wrote: read theirs
		var ks []key
		ks, err = r.syncOnce(ctx)
		if err == nil {
			r.apply(ks, true)
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			break
		}
	}
	own, changed := advance(r.applied, r.cfg.Now(), r.cfg.Rotation, r.cfg.Lifetime)
	r.apply(own, r.shared && !changed)
	return err
}

// syncOnce is one read and, if due, one write; it returns the ring that
// is in the Secret now.
func (r *Ring) syncOnce(ctx context.Context) ([]key, error) {
	now := r.cfg.Now()
	sec, err := r.secrets.Get(ctx, r.cfg.Name, metav1.GetOptions{})
	missing := apierrors.IsNotFound(err)
	if err != nil && !missing {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", r.cfg.Namespace, r.cfg.Name, err)
	}
	var old []key
	switch {
	case missing:
	case len(sec.Data[DataKey]) == 0: // as the chart makes it
		r.log.Info("filling the empty TLS session ticket keys' Secret")
	default:
		if old, err = decode(sec.Data[DataKey]); err != nil {
			// Tickets issued with the lost keys fall back to a full
			// handshake: a cost, not a failure.
			r.log.Warn("the TLS session ticket keys' Secret holds no usable ring: replacing it", "err", err)
		}
	}
	ks, due := advance(old, now, r.cfg.Rotation, r.cfg.Lifetime)
	if !due {
		return ks, nil
	}
	data, err := json.Marshal(ring{Keys: ks})
	if err != nil {
		return nil, err
	}
	if missing {
		_, err = r.secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: r.cfg.Name, Namespace: r.cfg.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "aim"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{DataKey: data},
		}, metav1.CreateOptions{})
		if apierrors.IsForbidden(err) {
			// The chart makes the Secret and grants no create: an
			// upgrade of the release makes it again.
			return nil, fmt.Errorf("the Secret %s/%s is missing and may not be created here (helm upgrade makes it again): %w", r.cfg.Namespace, r.cfg.Name, err)
		}
		if err != nil {
			return nil, fmt.Errorf("creating Secret %s/%s: %w", r.cfg.Namespace, r.cfg.Name, err)
		}
		r.log.Info("created the TLS session ticket keys' Secret")
		return ks, nil
	}
	sec = sec.DeepCopy()
	if sec.Data == nil {
		sec.Data = map[string][]byte{}
	}
	sec.Data[DataKey] = data
	// sec carries the resourceVersion read: if another replica wrote
	// since, this is a conflict and its ring is read again.
	if _, err := r.secrets.Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("writing Secret %s/%s: %w", r.cfg.Namespace, r.cfg.Name, err)
	}
	r.log.Info("rotated the TLS session ticket keys", "keys", len(ks))
	return ks, nil
}

// apply makes ks (newest first) the keys of every wrapped config: the
// current one (the newest started) first, then the rest.
func (r *Ring) apply(ks []key, shared bool) {
	now := r.cfg.Now()
	order := slices.Clone(ks)
	if i := slices.IndexFunc(order, func(k key) bool { return !k.Start.After(now) }); i > 0 {
		cur := order[i]
		order = append([]key{cur}, slices.Delete(order, i, i+1)...)
	}
	if shared != r.shared {
		if shared {
			r.log.Info("TLS session tickets: using the keys shared by the replicas")
		} else {
			r.log.Warn("TLS session tickets: the Secret is out of reach, this replica rotates keys of its own; tickets from other replicas may take a full handshake")
		}
		r.shared = shared
	}
	if slices.EqualFunc(order, r.applied, sameKey) {
		return
	}
	r.applied = order
	for _, w := range r.bases {
		w.cur.Store(withKeys(w.base, order))
	}
}

// decode reads a ring; an error says what is wrong with it.
func decode(data []byte) ([]key, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("no %s entry", DataKey)
	}
	var rg ring
	if err := json.Unmarshal(data, &rg); err != nil {
		return nil, fmt.Errorf("%s: %w", DataKey, err)
	}
	for i, k := range rg.Keys {
		if len(k.Key) != 32 || k.Start.IsZero() {
			return nil, fmt.Errorf("%s: key %d: want 32 bytes and a start", DataKey, i)
		}
	}
	return rg.Keys, nil
}

// advance is the ring due at now, newest first: keys past their
// lifetime dropped, a current key (one started by now) and a next one
// (starting after now) present. due says whether it differs from ks.
func advance(ks []key, now time.Time, rotation, lifetime time.Duration) (_ []key, due bool) {
	out := slices.DeleteFunc(slices.Clone(ks), func(k key) bool { return !now.Before(k.Start.Add(lifetime)) })
	due = len(out) != len(ks)
	slices.SortStableFunc(out, func(a, b key) int { return b.Start.Compare(a.Start) })
	if !slices.EqualFunc(out, ks, sameKey) {
		due = true
	}
	if !slices.ContainsFunc(out, func(k key) bool { return !k.Start.After(now) }) {
		out = append([]key{newKey(now)}, out...)
		due = true
	}
	for !out[0].Start.After(now) {
		// Due a Rotation after the newest, or now if that passed while
		// no replica ran: the others then learn it a Poll late.
		start := out[0].Start.Add(rotation)
		if !start.After(now) {
			start = now
		}
		out = append([]key{newKey(start)}, out...)
		due = true
	}
	return out, due
}

func sameKey(a, b key) bool { return a.Start.Equal(b.Start) && bytes.Equal(a.Key, b.Key) }

func newKey(start time.Time) key {
	k := key{Start: start.UTC(), Key: make([]byte, 32)}
	_, _ = rand.Read(k.Key) // never fails (crypto/rand)
	return k
}
