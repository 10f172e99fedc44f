//go:build cluster

// The storage against a real kube-apiserver and etcd (envtest):
//
//	go test -tags cluster ./internal/kube/certstore/
//
// scripts/test-kube.sh runs it; see test/apiserver for the binaries.
package certstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	corev1 "k8s.io/api/core/v1"

	"github.com/caddyserver/certmagic"

	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/test/apiserver"
)

// TestCluster runs every test here against one API server, each in a
// namespace of its own.
func TestCluster(t *testing.T) {
	kc := kubernetes.NewForConfigOrDie(apiserver.Start(t))
	for _, tt := range []struct {
		name string
		f    func(*testing.T, kubernetes.Interface, string)
	}{
		{"storage", testStorage},
		{"lock contention", testLockContention},
		{"stale lock takeover", testStaleLockTakeover},
		{"unlock after a renewal it did not see", testUnlockAfterUnseenRenewal},
		{"certmagic's cleaning", testCleanStorage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := "t-" + randomHex(4)
			if _, err := kc.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			tt.f(t, kc, ns)
		})
	}
}

func newStorage(t *testing.T, kc kubernetes.Interface, cfg Config) *Storage {
	t.Helper()
	cfg.Logger = testlog.Logger(t, slog.LevelInfo)
	s, err := New(kc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testStorage(t *testing.T, kc kubernetes.Interface, ns string) {
	ctx := t.Context()
	s := newStorage(t, kc, Config{Namespace: ns})
	other := newStorage(t, kc, Config{Namespace: ns, Prefix: "other"})

	keys := map[string]string{
		"acme/ca.example-directory/users/a@b.c/a.json":                                         "account",
		"certificates/ca.example-directory/demo.aim.test/demo.aim.test.crt":                    "cert",
		"certificates/ca.example-directory/demo.aim.test/demo.aim.test.key":                    "key",
		"certificates/ca.example-directory/wildcard_.aim.test/wildcard_.aim.test.crt":          "wild",
		"Odd Key With/UPPER case and $ymbols and a very long last element that goes on and on": "odd",
	}
	for k, v := range keys {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
	// Overwrite.
	if err := s.Store(ctx, "certificates/ca.example-directory/demo.aim.test/demo.aim.test.crt", []byte("cert2")); err != nil {
		t.Fatal(err)
	}
	keys["certificates/ca.example-directory/demo.aim.test/demo.aim.test.crt"] = "cert2"
	if err := other.Store(ctx, "certificates/elsewhere", []byte("x")); err != nil {
		t.Fatal(err)
	}

	for k, v := range keys {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Errorf("Load(%q) = %q, %v; want %q", k, got, err, v)
		}
		if errs := validation.IsDNS1123Subdomain(s.objectName(k)); len(errs) > 0 {
			t.Errorf("name %q of %q: %v", s.objectName(k), k, errs)
		}
	}
	if _, err := s.Load(ctx, "certificates/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Load(ctx, "certificates/elsewhere"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of another storage's key: %v, want fs.ErrNotExist", err)
	}
	// The readable part of a Secret's name is its key's last element.
	if n := s.objectName("certificates/ca.example-directory/demo.aim.test/demo.aim.test.crt"); !strings.HasPrefix(n, "aim-certs-demo-aim-test-crt-") {
		t.Errorf("Secret name %q", n)
	}

	info, err := s.Stat(ctx, "certificates/ca.example-directory/demo.aim.test/demo.aim.test.key")
	if err != nil || !info.IsTerminal || info.Size != 3 || time.Since(info.Modified) > time.Minute {
		t.Errorf("Stat of a key: %+v, %v", info, err)
	}
	if info, err := s.Stat(ctx, "certificates/ca.example-directory"); err != nil || info.IsTerminal {
		t.Errorf("Stat of a directory: %+v, %v", info, err)
	}
	if _, err := s.Stat(ctx, "certificates/ca.example"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a mere prefix of a directory's name: %v, want fs.ErrNotExist", err)
	}
	if !s.Exists(ctx, "acme/ca.example-directory/users/a@b.c/a.json") || !s.Exists(ctx, "acme") || s.Exists(ctx, "acm") {
		t.Error("Exists is wrong for a key, a directory or a prefix")
	}

	list := func(dir string, recursive bool, want ...string) {
		t.Helper()
		got, err := s.List(ctx, dir, recursive)
		if len(want) == 0 {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("List(%q, %v) = %q, %v; want fs.ErrNotExist", dir, recursive, got, err)
			}
			return
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("List(%q, %v) = %q, %v\nwant %q", dir, recursive, got, err, want)
		}
	}
	list("certificates", false, "certificates/ca.example-directory")
	list("certificates/ca.example-directory", false,
		"certificates/ca.example-directory/demo.aim.test",
		"certificates/ca.example-directory/wildcard_.aim.test")
	list("certificates", true,
		"certificates/ca.example-directory",
		"certificates/ca.example-directory/demo.aim.test",
		"certificates/ca.example-directory/demo.aim.test/demo.aim.test.crt",
		"certificates/ca.example-directory/demo.aim.test/demo.aim.test.key",
		"certificates/ca.example-directory/wildcard_.aim.test",
		"certificates/ca.example-directory/wildcard_.aim.test/wildcard_.aim.test.crt")
	list("", false, "Odd Key With", "acme", "certificates")
	list("nothing", true)

	// A directory deeper than the labels index is listed and deleted too.
	deep := "deep/1/2/3/4/5/6/7/8"
	if err := s.Store(ctx, deep, []byte("deep")); err != nil {
		t.Fatal(err)
	}
	list("deep/1/2/3/4/5/6", false, "deep/1/2/3/4/5/6/7")
	list("deep/1/2/3/4/5/6/7", true, deep)
	list("deep/1/2/3/4/5", true, "deep/1/2/3/4/5/6", "deep/1/2/3/4/5/6/7", deep)
	if err := s.Delete(ctx, "deep/1/2/3/4/5/6/7"); err != nil || s.Exists(ctx, deep) || s.Exists(ctx, "deep") {
		t.Errorf("deleting a deep directory: %v; the key exists: %v", err, s.Exists(ctx, deep))
	}
	// Listing a directory asks for its Secrets by label.
	sec, err := kc.CoreV1().Secrets(ns).Get(ctx, s.objectName("certificates/ca.example-directory/demo.aim.test/demo.aim.test.key"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sec.Labels[dirLabel(3)], hash16("certificates/ca.example-directory/demo.aim.test"); got != want {
		t.Errorf("label %s = %q, want %q", dirLabel(3), got, want)
	}
	if _, ok := sec.Labels[dirLabel(4)]; ok {
		t.Errorf("label %s on a key of depth 4: a key is not its own directory", dirLabel(4))
	}

	// A directory's Delete removes everything under it, and nothing else.
	if err := s.Delete(ctx, "certificates/ca.example-directory/demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	list("certificates", true,
		"certificates/ca.example-directory",
		"certificates/ca.example-directory/wildcard_.aim.test",
		"certificates/ca.example-directory/wildcard_.aim.test/wildcard_.aim.test.crt")
	if s.Exists(ctx, "certificates/ca.example-directory/demo.aim.test/demo.aim.test.key") {
		t.Error("a deleted directory's key still exists")
	}
	if err := s.Delete(ctx, "certificates/nope"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if err := s.Delete(ctx, "acme/ca.example-directory/users/a@b.c/a.json"); err != nil || s.Exists(ctx, "acme") {
		t.Errorf("deleting the only key under acme: %v; acme exists: %v", err, s.Exists(ctx, "acme"))
	}
	if got, err := other.Load(ctx, "certificates/elsewhere"); err != nil || string(got) != "x" {
		t.Errorf("the other storage's key after deletes: %q, %v", got, err)
	}

	// What is in the cluster: labelled Secrets of the storage's type, the
	// key in an annotation.
	secs, err := kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelStorage + "=aim-certs"})
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, sec := range secs.Items {
		if sec.Type != SecretType {
			t.Errorf("Secret %s has type %q", sec.Name, sec.Type)
		}
		stored = append(stored, sec.Annotations[AnnotationKey])
	}
	slices.Sort(stored)
	want := []string{
		"Odd Key With/UPPER case and $ymbols and a very long last element that goes on and on",
		"certificates/ca.example-directory/wildcard_.aim.test/wildcard_.aim.test.crt",
	}
	if !slices.Equal(stored, want) {
		t.Errorf("Secrets hold %q, want %q", stored, want)
	}
}

// Two lockers (two gateway replicas): one waits while the other holds the
// lock, past the TTL since the holder renews it, and gets it once it is
// released.
func testLockContention(t *testing.T, kc kubernetes.Interface, ns string) {
	ctx := t.Context()
	cfg := Config{Namespace: ns, LockTTL: 2 * time.Second, LockPoll: 100 * time.Millisecond}
	a, b := newStorage(t, kc, withID(cfg, "a")), newStorage(t, kc, withID(cfg, "b"))

	if err := a.Lock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	got := make(chan time.Time, 1)
	go func() {
		if err := b.Lock(ctx, "issue_cert_demo.aim.test"); err != nil {
			t.Errorf("b.Lock: %v", err)
		}
		got <- time.Now()
	}()
	// Twice the TTL: only renewals keep b out that long.
	select {
	case <-got:
		t.Fatal("b got the lock while a held it")
	case <-time.After(2 * cfg.LockTTL):
	}
	// Another name is free meanwhile.
	if err := b.Lock(ctx, "issue_cert_other.aim.test"); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(ctx, "issue_cert_other.aim.test"); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	if err := a.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		if d := at.Sub(released); d > time.Second {
			t.Errorf("b got the lock %s after a released it; want within a poll", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b did not get the lock after a released it")
	}
	lease, err := kc.CoordinationV1().Leases(ns).Get(ctx, b.objectName("locks/issue_cert_demo.aim.test"), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := *lease.Spec.HolderIdentity; !strings.HasPrefix(h, "b-") {
		t.Errorf("the Lease's holder is %q, want b's", h)
	}
	if err := b.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CoordinationV1().Leases(ns).Get(ctx, lease.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease is still there after Unlock: %v", err)
	}
	// A waiter gives up when its context ends.
	if err := a.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := b.Lock(short, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("b.Lock with a short context: %v, want its deadline", err)
	}
	_ = a.Unlock(ctx, "x")
}

// A holder that stops renewing (a replica that crashed mid-issuance) has
// its lock taken over once the TTL has passed, not before; its late
// Unlock leaves the new holder's Lease alone.
func testStaleLockTakeover(t *testing.T, kc kubernetes.Interface, ns string) {
	ctx := t.Context()
	cfg := Config{Namespace: ns, LockTTL: 3 * time.Second, LockPoll: 100 * time.Millisecond}
	a, b := newStorage(t, kc, withID(cfg, "a")), newStorage(t, kc, withID(cfg, "b"))

	if err := a.Lock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	// a "crashes": its renewer stops, the Lease stays.
	a.mu.Lock()
	h := a.held["issue_cert_demo.aim.test"]
	a.mu.Unlock()
	h.stop()
	<-h.done
	crashed := time.Now()

	bounded, cancel := context.WithTimeout(ctx, cfg.LockTTL+5*time.Second)
	defer cancel()
	if err := b.Lock(bounded, "issue_cert_demo.aim.test"); err != nil {
		t.Fatalf("b never took the stale lock over: %v", err)
	}
	waited := time.Since(crashed)
	t.Logf("b took the stale lock over after %s", waited.Round(time.Millisecond))
	// Leases count whole seconds and renewTime has microseconds: allow a
	// little under the TTL, never much under it.
	if waited < cfg.LockTTL-500*time.Millisecond {
		t.Errorf("b took the lock over after %s, before its TTL %s", waited, cfg.LockTTL)
	}
	if waited > cfg.LockTTL+2*time.Second {
		t.Errorf("b took the lock over only after %s (TTL %s)", waited, cfg.LockTTL)
	}
	if err := a.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	lease, err := kc.CoordinationV1().Leases(ns).Get(ctx, b.objectName("locks/issue_cert_demo.aim.test"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("b's Lease after a's late Unlock: %v", err)
	}
	if h := *lease.Spec.HolderIdentity; !strings.HasPrefix(h, "b-") {
		t.Errorf("the Lease's holder is %q, want b's", h)
	}
	if err := b.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
}

// A renewal that Unlock cancels may still be applied: the Lease then has
// a resourceVersion the holder never saw. It is still the holder's, and
// Unlock must remove it, not leave it for others to wait out.
func testUnlockAfterUnseenRenewal(t *testing.T, kc kubernetes.Interface, ns string) {
	ctx := t.Context()
	a := newStorage(t, kc, withID(Config{Namespace: ns}, "a"))
	if err := a.Lock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	leases := kc.CoordinationV1().Leases(ns)
	name := a.objectName("locks/issue_cert_demo.aim.test")
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.NewMicroTime(time.Now())
	cur.Spec.RenewTime = &now
	if _, err := leases.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(ctx, "issue_cert_demo.aim.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := leases.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease after Unlock: %v; want it gone", err)
	}
}

func withID(c Config, id string) Config { c.Identity = id; return c }

// certmagic's own storage cleaning, through this storage: it lists the
// issuers' and sites' directories, loads each certificate, deletes an
// expired one's Secrets with its lock held, and records when it ran.
func testCleanStorage(t *testing.T, kc kubernetes.Interface, ns string) {
	ctx := t.Context()
	s := newStorage(t, kc, Config{Namespace: ns})
	put := func(name string, notAfter time.Time) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{name}, NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		base := "certificates/ca.example-directory/" + name + "/" + name
		for k, v := range map[string][]byte{".crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ".key": []byte("key"), ".json": []byte("{}")} {
			if err := s.Store(ctx, base+k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("gone.aim.test", time.Now().Add(-48*time.Hour))
	put("kept.aim.test", time.Now().Add(48*time.Hour))
	err := certmagic.CleanStorage(ctx, s, certmagic.CleanStorageOptions{Interval: time.Hour, ExpiredCerts: true, ExpiredCertGracePeriod: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "certificates", true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"certificates/ca.example-directory",
		"certificates/ca.example-directory/kept.aim.test",
		"certificates/ca.example-directory/kept.aim.test/kept.aim.test.crt",
		"certificates/ca.example-directory/kept.aim.test/kept.aim.test.json",
		"certificates/ca.example-directory/kept.aim.test/kept.aim.test.key",
	}
	if !slices.Equal(got, want) {
		t.Errorf("after cleaning:\n%q\nwant\n%q", got, want)
	}
	if !s.Exists(ctx, "last_clean.json") {
		t.Error("no last_clean.json: the next Manager would clean again at once")
	}
	leases, err := kc.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(leases.Items) != 0 {
		t.Errorf("Leases after cleaning: %d, %v; want none", len(leases.Items), err)
	}
}
