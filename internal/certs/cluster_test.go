//go:build cluster

// Two Managers sharing certificate storage in Kubernetes Secrets, as the
// gateway's replicas in a cluster do, against a real kube-apiserver and
// etcd (envtest) and a real ACME server (pebble):
//
//	go test -tags cluster -run '^TestCluster' ./internal/certs/
//
// scripts/test-kube.sh runs it; see test/apiserver for the binaries.
package certs

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/aimhub/aim/internal/kube/certstore"
	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/test/apiserver"
	"github.com/aimhub/aim/test/pebble"
)

// replicaEnv, when set, makes the test binary run replica b (runReplica)
// instead of the tests: certmagic keeps the challenges a process started
// in memory of its own, so only a second process shows that a replica
// answers a challenge another started from the shared storage alone.
const replicaEnv = "AIM_TEST_CERTS_REPLICA"

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		if err := runReplica(); err != nil {
			fmt.Fprintln(os.Stderr, "replica:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestClusterSharedStorage: replica a (this process) obtains demo's
// certificate through HTTP-01, whose validation request pebble sends to
// replica b (another process, as a Service may), which answers it from
// the Secrets; b then serves the same certificate without an issuance of
// its own. A name that is no solution's gets nothing from either, and
// leaves nothing in the cluster. A name both replicas are asked for at
// once is ordered once; TLS-ALPN-01 is answered across replicas too.
func TestClusterSharedStorage(t *testing.T) {
	cfg := apiserver.Start(t)
	kc := kubernetes.NewForConfigOrDie(cfg)
	const ns = "aim-system"
	if _, err := kc.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ga, gb := listen(t), listen(t)
	// The ports clients and the CA reach: b's, as if the Service had
	// chosen b for every validation request.
	ca := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: gb.httpPort(), TLSPort: gb.httpsPort()})
	b := startReplica(t, cfg, ns, ca, gb)

	st, err := certstore.New(kc, certstore.Config{Namespace: ns, Identity: "a", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ma, err := New(t.Context(), Config{
		Mode:      ModeACME,
		Domain:    "aim.test",
		Allow:     allow("demo", "race", "alpn").Allow,
		ACMECA:    ca.DirectoryURL,
		ACMERoots: ca.Roots,
		HTTPPort:  gb.httpPort(),
		HTTPSPort: gb.httpsPort(),
		Storage:   st,
		Logger:    testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	// HTTP-01 only: its validation request is the one that must find
	// the other replica able to answer.
	ma.acme.DisableTLSALPNChallenge = true
	ga.serve(t, ma, app)

	leafA, err := handshake(t.Context(), ga, "demo.aim.test", ca.IssuerRoots)
	if err != nil {
		t.Fatalf("replica a, demo.aim.test: %v", err)
	}
	if n := ma.obtaining.Load(); n != 1 {
		t.Errorf("replica a started %d issuances, want 1", n)
	}
	if n := ga.challenges.Load(); n != 0 {
		t.Errorf("replica a's HTTP listener got %d challenge requests; pebble was sent to b", n)
	}

	leafB, err := handshake(t.Context(), gb, "demo.aim.test", ca.IssuerRoots)
	if err != nil {
		t.Fatalf("replica b, demo.aim.test: %v", err)
	}
	if leafB.SerialNumber.Cmp(leafA.SerialNumber) != 0 {
		t.Errorf("replica b serves certificate %x, a obtained %x: b issued its own", leafB.SerialNumber, leafA.SerialNumber)
	}
	stats := b.stats(t, ca.IssuerRoots)
	t.Logf("replica b: %s", stats)
	if !strings.Contains(stats, "obtaining=0 ") {
		t.Errorf("replica b: %s; want no issuance", stats)
	}
	if strings.Contains(stats, "answered=0") {
		t.Errorf("replica b: %s; want it to have answered pebble's HTTP-01 request", stats)
	}

	for _, g := range []*gateway{ga, gb} {
		if _, err := handshake(t.Context(), g, "nope.aim.test", ca.IssuerRoots); err == nil {
			t.Error("a handshake for nope.aim.test succeeded; want it refused")
		}
	}
	if n := ma.obtaining.Load(); n != 1 {
		t.Errorf("replica a: %d issuances after refusing nope.aim.test, want 1", n)
	}
	if stats := b.stats(t, ca.IssuerRoots); !strings.Contains(stats, "obtaining=0 ") {
		t.Errorf("replica b after refusing nope.aim.test: %s; want no issuance", stats)
	}

	// Both replicas asked for race's certificate at once: one orders it
	// while the other waits on the Lease, then finds it in storage.
	leaves := make([]*x509.Certificate, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, g := range []*gateway{ga, gb} {
		wg.Go(func() { leaves[i], errs[i] = handshake(t.Context(), g, "race.aim.test", ca.IssuerRoots) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("race.aim.test from both replicas at once: %v", err)
	}
	if leaves[0].SerialNumber.Cmp(leaves[1].SerialNumber) != 0 {
		t.Errorf("the replicas serve race.aim.test with certificates %x and %x: two issuances", leaves[0].SerialNumber, leaves[1].SerialNumber)
	}
	var nb int64
	if _, err := fmt.Sscanf(b.stats(t, ca.IssuerRoots), "obtaining=%d", &nb); err != nil {
		t.Fatal(err)
	}
	if na := ma.obtaining.Load(); na+nb != 2 {
		t.Errorf("issuances after race.aim.test: a %d, b %d; want 2 in all (demo and race)", na, nb)
	}

	// TLS-ALPN-01 alone: pebble's validation handshake reaches b, whose
	// TLS config finds a's challenge in storage. (No issuance runs now,
	// so the issuer's settings can change.)
	ma.acme.DisableHTTPChallenge, ma.acme.DisableTLSALPNChallenge = true, false
	if _, err := handshake(t.Context(), ga, "alpn.aim.test", ca.IssuerRoots); err != nil {
		t.Errorf("replica a, alpn.aim.test through TLS-ALPN-01 answered by b: %v", err)
	}

	// In the cluster: demo's certificate and key, the account; nothing of
	// nope; no lock left behind.
	secs, err := kc.CoreV1().Secrets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: certstore.LabelStorage})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range secs.Items {
		keys = append(keys, s.Annotations[certstore.AnnotationKey])
	}
	joined := strings.Join(keys, "\n")
	t.Logf("stored keys:\n%s", joined)
	for _, want := range []string{"/demo.aim.test/demo.aim.test.crt", "/demo.aim.test/demo.aim.test.key"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no stored key ends in %s", want)
		}
	}
	if strings.Contains(joined, "nope") {
		t.Error("something was stored for nope.aim.test")
	}
	leases, err := kc.CoordinationV1().Leases(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != 0 {
		t.Errorf("%d Leases left after the issuance, want none: the lock was not released", len(leases.Items))
	}
}

// replica is replica b, running in a child process on g's listeners.
type replica struct{ g *gateway }

// startReplica runs this test binary as replica b: on g's listeners
// (passed as files), with the API server through a kubeconfig and
// pebble's directory. It returns once b serves and stops it when t ends.
func startReplica(t *testing.T, cfg *rest.Config, ns string, ca *pebble.Server, g *gateway) *replica {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kcfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken}
	kcfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin", Namespace: ns}
	kcfg.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kcfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	files := make([]*os.File, 2)
	for i, ln := range []net.Listener{g.httpLn, g.httpsLn} {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files[i] = f
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		replicaEnv+"=b",
		"KUBECONFIG="+kubeconfig,
		"AIM_TEST_NAMESPACE="+ns,
		"AIM_TEST_ACME_CA="+ca.DirectoryURL,
		"AIM_TEST_ACME_ROOTS="+ca.RootsFile,
		fmt.Sprintf("AIM_TEST_PORTS=%d,%d", g.httpPort(), g.httpsPort()),
	)
	cmd.ExtraFiles = files
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testlog.Writer(t)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
	ready := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
	case <-exited:
		t.Fatal("replica b exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("replica b did not serve within 30s")
	}
	return &replica{g: g}
}

// stats are replica b's counts: "obtaining=N answered=M".
func (r *replica) stats(t *testing.T, roots *x509.CertPool) string {
	t.Helper()
	resp, err := client(roots).Get(fmt.Sprintf("https://demo.aim.test:%d/_stats", r.g.httpsPort()))
	if err != nil {
		t.Fatalf("asking replica b for its counts: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// runReplica is replica b: a Manager on the Secrets, serving HTTPS and
// HTTP on the listeners it was given (fds 3 and 4); /_stats tells its
// issuances and the challenges it answered.
func runReplica() error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("replica", "b")
	rc, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	st, err := certstore.New(kubernetes.NewForConfigOrDie(rc), certstore.Config{Namespace: os.Getenv("AIM_TEST_NAMESPACE"), Identity: "b", Logger: log})
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(os.Getenv("AIM_TEST_ACME_ROOTS"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	var httpPort, httpsPort int
	if _, err := fmt.Sscanf(os.Getenv("AIM_TEST_PORTS"), "%d,%d", &httpPort, &httpsPort); err != nil {
		return err
	}
	m, err := New(ctx, Config{
		Mode: ModeACME, Domain: "aim.test", Allow: allow("demo", "race", "alpn").Allow,
		ACMECA: os.Getenv("AIM_TEST_ACME_CA"), ACMERoots: roots,
		HTTPPort: httpPort, HTTPSPort: httpsPort, Storage: st, Logger: log,
	})
	if err != nil {
		return err
	}
	m.acme.DisableTLSALPNChallenge = true
	httpLn, err := net.FileListener(os.NewFile(3, "http"))
	if err != nil {
		return err
	}
	httpsLn, err := net.FileListener(os.NewFile(4, "https"))
	if err != nil {
		return err
	}
	var answered atomic.Int64
	challenges := m.HTTPHandler(http.NotFoundHandler())
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		challenges.ServeHTTP(rec, r)
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") && rec.status == http.StatusOK {
			answered.Add(1)
		}
	})
	https := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_stats" {
			fmt.Fprintf(w, "obtaining=%d answered=%d", m.obtaining.Load(), answered.Load())
			return
		}
		app.ServeHTTP(w, r)
	})
	errs := make(chan error, 2)
	go func() { errs <- (&http.Server{Handler: plain}).Serve(httpLn) }()
	go func() { errs <- (&http.Server{Handler: https, TLSConfig: m.TLSConfig()}).ServeTLS(httpsLn, "", "") }()
	fmt.Println("ready")
	return <-errs
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}
