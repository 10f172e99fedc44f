//go:build cluster

// The replicas' shared TLS session ticket keys against a real
// kube-apiserver and etcd (envtest), acting with the permissions the
// chart gives the gateway with TLS on:
//
//	go test -tags cluster -run '^TestClusterTicketKeys' ./internal/kube/kubegateway/
//
// scripts/test-kube.sh runs it; it needs helm (hack/manifests.sh installs
// it) and the binaries test/apiserver names.
package kubegateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/internal/kube"
	"github.com/aimhub/aim/internal/kube/ticketkeys"
	"github.com/aimhub/aim/test/apiserver"
)

// clock is the rings' time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(d time.Duration, t0 time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t0.Add(d)
}

// oneTicket keeps the first ticket it is given, so that one ticket can be
// offered again and again (a client's cache keeps the newest).
type oneTicket struct {
	mu sync.Mutex
	cs *tls.ClientSessionState
}

func (o *oneTicket) Get(string) (*tls.ClientSessionState, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cs, o.cs != nil
}

func (o *oneTicket) Put(_ string, cs *tls.ClientSessionState) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cs == nil && cs != nil {
		o.cs = cs
	}
}

// TestClusterTicketKeys: two gateway replicas, each with its own
// tls.Config served by http.Server.ServeTLS as the gateway's are, share
// ticket keys through the chart's Secret under the chart's RBAC: a
// ticket one issued resumes on the other, across rotations within its
// lifetime and not past it; a corrupt Secret is replaced and a missing
// one leaves the replicas serving with keys of their own until the
// release makes it again.
func TestClusterTicketKeys(t *testing.T) {
	const ns, secret = "aim-system", "aim-gateway-ticket-keys"
	cfg := apiserver.Start(t)
	scheme, err := kube.Scheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	chart := renderChart(t, ns, "tls.mode=cert-manager", "domain=aim.test")
	if !bytes.Contains(chart, []byte("--ticket-keys-secret="+ns+"/"+secret)) {
		t.Fatalf("the chart's gateway is not given --ticket-keys-secret=%s/%s", ns, secret)
	}
	applyRBAC(ctx, t, admin, chart)
	applyKinds(ctx, t, admin, chart, "Secret")

	gwCfg := rest.CopyConfig(cfg)
	gwCfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":aim-gateway",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	gwClient := kubernetes.NewForConfigOrDie(gwCfg)

	dir := t.TempDir()
	writeCert(t, dir, "demo.aim.test")
	files, err := newCertFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	pemCert, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCert)

	t0 := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	replica := func(name string) (*ticketkeys.Ring, string) {
		ring, err := ticketkeys.New(gwClient, ticketkeys.Config{Namespace: ns, Name: secret, Now: clk.now, Logger: log.With("replica", name)})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{
			Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, name) }),
			TLSConfig: (&ticketCerts{Certificates: &fileCerts{files: files, domain: "aim.test"}, ring: ring}).TLSConfig(),
		}
		go func() { _ = srv.ServeTLS(ln, "", "") }()
		t.Cleanup(func() { _ = srv.Close() })
		return ring, ln.Addr().String()
	}
	ringA, addrA := replica("a")
	ringB, addrB := replica("b")
	syncAll := func(rings ...*ticketkeys.Ring) {
		t.Helper()
		for _, r := range rings {
			if err := r.Sync(ctx); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		}
	}
	// dial makes a request over TLS 1.3 to addr with the ticket in
	// cache, if any, and says whether the session was resumed. A
	// failed handshake fails the test: the gateway must always serve.
	dial := func(addr string, cache tls.ClientSessionCache) bool {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "demo.aim.test", RootCAs: roots, MinVersion: tls.VersionTLS13, ClientSessionCache: cache})
		if err != nil {
			t.Fatalf("handshake with %s: %v", addr, err)
		}
		defer c.Close()
		// The answer is read past the tickets the server sends after
		// the handshake, so that the cache has them.
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: demo.aim.test\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(c); err != nil || !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) {
			t.Fatalf("GET from %s: %q, %v", addr, b, err)
		}
		return c.ConnectionState().DidResume
	}
	ticketFrom := func(addr string) *oneTicket {
		t.Helper()
		tk := &oneTicket{}
		dial(addr, tk)
		if tk.cs == nil {
			t.Fatalf("%s issued no ticket", addr)
		}
		return tk
	}
	expect := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Errorf("%s: resumed %v, want %v", what, got, want)
		}
	}

	syncAll(ringA, ringB)
	t0a := ticketFrom(addrA)
	expect("a's ticket on b", dial(addrB, t0a), true)
	expect("a's ticket on a", dial(addrA, t0a), true)

	// At 12h the next key begins. a rotates and issues with it; b has
	// not looked at the Secret since, but the key was in it a whole
	// rotation ahead.
	clk.set(12*time.Hour, t0)
	syncAll(ringA)
	t12a := ticketFrom(addrA)
	expect("a's new ticket on b, before b synced", dial(addrB, t12a), true)
	syncAll(ringB)
	expect("the first ticket after one rotation", dial(addrB, t0a), true)

	// Both find the ring due at once (the 24h key began): one write
	// wins, the other reads it on its conflict, and they agree.
	clk.set(35*time.Hour, t0)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, r := range []*ticketkeys.Ring{ringA, ringB} {
		wg.Go(func() { errs[i] = r.Sync(ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("Syncs at once: %v, %v", errs[0], errs[1])
	}
	expect("a's ticket on b after both rotated at once", dial(addrB, ticketFrom(addrA)), true)
	expect("b's ticket on a after both rotated at once", dial(addrA, ticketFrom(addrB)), true)
	expect("the first ticket at 35h", dial(addrA, t0a), true)
	clk.set(36*time.Hour, t0)
	syncAll(ringB, ringA)
	expect("the first ticket at 36h, past its lifetime", dial(addrB, t0a), false)
	expect("the 12h ticket at 36h", dial(addrB, t12a), true)
	var sec corev1.Secret
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, &sec); err != nil {
		t.Fatal(err)
	}
	var stored struct{ Keys []struct{ Key []byte } }
	if err := json.Unmarshal(sec.Data[ticketkeys.DataKey], &stored); err != nil {
		t.Fatal(err)
	}
	// 12h, 24h, 36h and the next, 48h: the key of 0h went.
	if len(stored.Keys) != 4 {
		t.Errorf("the Secret holds %d keys at 36h, want 4", len(stored.Keys))
	}

	// Corrupt: replaced; the replicas serve on and share the new ring.
	sec.Data[ticketkeys.DataKey] = []byte("{not json")
	if err := admin.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	syncAll(ringA, ringB)
	expect("a ticket issued with keys the corruption lost", dial(addrA, t12a), false)
	tc := ticketFrom(addrB)
	expect("after the corruption, b's ticket on a", dial(addrA, tc), true)

	// Missing: the chart's RBAC creates no Secret, so each replica goes
	// on with the keys they shared, still serving, then rotates keys of
	// its own; the release's next upgrade makes the Secret again and
	// they share it.
	if err := admin.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret}}); err != nil {
		t.Fatal(err)
	}
	syncGone := func() {
		t.Helper()
		for _, r := range []*ticketkeys.Ring{ringA, ringB} {
			if err := r.Sync(ctx); err == nil || !strings.Contains(err.Error(), "is missing") {
				t.Errorf("Sync with the Secret gone: %v, want that it is missing", err)
			}
		}
	}
	clk.set(48*time.Hour, t0)
	syncGone()
	expect("with the Secret gone, a's ticket on b, by the keys they shared", dial(addrB, ticketFrom(addrA)), true)
	clk.set(60*time.Hour, t0)
	syncGone()
	expect("with the Secret gone a rotation long, a's ticket on b (each has its own keys)", dial(addrB, ticketFrom(addrA)), false)
	applyKinds(ctx, t, admin, chart, "Secret")
	syncAll(ringA, ringB)
	expect("with the Secret back, a's ticket on b", dial(addrB, ticketFrom(addrA)), true)

	// With the right to create it (aim gateway run outside the chart), a
	// missing Secret is made again.
	if err := admin.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret}}); err != nil {
		t.Fatal(err)
	}
	byAdmin, err := ticketkeys.New(kubernetes.NewForConfigOrDie(cfg), ticketkeys.Config{Namespace: ns, Name: secret, Now: clk.now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	syncAll(byAdmin, ringA, ringB)
	expect("with the Secret made again, a's ticket on b", dial(addrB, ticketFrom(addrA)), true)

	// No key reaches the log.
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, &sec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sec.Data[ticketkeys.DataKey], &stored); err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, k := range stored.Keys {
		if strings.Contains(logs.String(), base64.StdEncoding.EncodeToString(k.Key)) {
			t.Error("a ticket key is in the log")
		}
	}
	t.Logf("the rings' log:\n%s", logs.String())
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
