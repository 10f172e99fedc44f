//go:build cluster

// `aim gateway --tls=acme` against a real kube-apiserver and etcd
// (envtest) and a real ACME server (pebble), acting with the permissions
// the chart gives the gateway with tls.mode acme:
//
//	go test -tags cluster -run '^TestClusterGatewayACME' ./internal/kube/kubegateway/
//
// scripts/test-kube.sh runs it; it needs helm (hack/manifests.sh installs
// it) and the binaries test/apiserver names.
package kubegateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aimhub/aim/internal/kube"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/api/v1alpha1"
	"github.com/aimhub/aim/internal/certs"
	"github.com/aimhub/aim/internal/kube/certstore"
	"github.com/aimhub/aim/internal/kube/ticketkeys"
	"github.com/aimhub/aim/internal/testlog"
	"github.com/aimhub/aim/test/apiserver"
	"github.com/aimhub/aim/test/pebble"
)

// TestClusterGatewayACME: the gateway, as the chart's gateway service
// account, gets demo's certificate from pebble on the first handshake
// (HTTP-01, answered by its plain listener ahead of the redirect), keeps
// it in Secrets of its namespace, refuses a name that is no Solution's,
// and still redirects plain requests to HTTPS.
func TestClusterGatewayACME(t *testing.T) {
	const ns = "aim-system"
	cfg := apiserver.Start(t, "../../../deploy/helm/aim/crds")
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
	chart := renderChart(t, ns, "tls.mode=acme", "domain=aim.test")
	applyRBAC(ctx, t, admin, chart)
	applyKinds(ctx, t, admin, chart, "Secret") // the ticket keys'

	if err := admin.Create(ctx, &v1alpha1.Solution{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns},
		Spec:       v1alpha1.SolutionSpec{Components: []v1alpha1.Component{{Name: "web", Image: "w:1"}}},
	}); err != nil {
		t.Fatal(err)
	}

	// The gateway's kubeconfig: the admin's credentials, impersonating
	// the chart's service account, so its RBAC is what it acts with.
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kcfg.AuthInfos["gateway"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		Impersonate:       "system:serviceaccount:" + ns + ":aim-gateway",
		ImpersonateGroups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	kcfg.Contexts["gateway"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "gateway", Namespace: ns}
	kcfg.CurrentContext = "gateway"
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kcfg, kubeconfig); err != nil {
		t.Fatal(err)
	}

	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := httpLn.Addr().(*net.TCPAddr).Port
	httpsPort := freePort(t)
	// TLS-ALPN-01 is sent where nothing listens: a certificate proves
	// that the plain listener answered HTTP-01 ahead of its redirect.
	ca := pebble.Start(t, pebble.Options{Zone: "aim.test", HTTPPort: httpPort, TLSPort: freePort(t)})

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- RunGateway(runCtx, GatewayOptions{
			Kubeconfig: kubeconfig, Namespace: ns, Domain: "aim.test",
			Listener: httpLn, HTTPS: "127.0.0.1:" + strconv.Itoa(httpsPort),
			TLS: "acme", ACME: certs.Config{ACMECA: ca.DirectoryURL, ACMERoots: ca.Roots}, ACMENamespace: ns,
			TicketKeysSecret: ns + "/aim-gateway-ticket-keys",
			DrainDelay:       10 * time.Millisecond, Logger: testlog.Logger(t, slog.LevelInfo),
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the gateway: %v", err)
		}
	})
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	base := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("the gateway stopped: %v", err)
		default:
		}
		resp, err := plain.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway's /healthz did not answer 200 in 30s: %v", err)
		}
	}

	dial := func(name string) (*tls.ConnectionState, error) {
		d := &tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: ca.IssuerRoots}}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(httpsPort))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		st := c.(*tls.Conn).ConnectionState()
		return &st, nil
	}
	st, err := dial("demo.aim.test")
	if err != nil {
		t.Fatalf("handshake for demo.aim.test, trusting pebble: %v", err)
	}
	// The chart's empty Secret was filled with the replicas' ticket keys
	// before the gateway served.
	var tk corev1.Secret
	if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: "aim-gateway-ticket-keys"}, &tk); err != nil || len(tk.Data[ticketkeys.DataKey]) == 0 {
		t.Errorf("the ticket keys' Secret: %v, data entries %v", err, slices.Collect(maps.Keys(tk.Data)))
	}
	if names := st.PeerCertificates[0].DNSNames; !slices.Equal(names, []string{"demo.aim.test"}) {
		t.Errorf("certificate for %v, want [demo.aim.test]", names)
	}
	if _, err := dial("nope.aim.test"); err == nil {
		t.Error("handshake for nope.aim.test succeeded; it is no solution's")
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/x?y=1", nil)
	req.Host = "demo.aim.test"
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || loc != "https://demo.aim.test/x?y=1" {
		t.Errorf("plain GET of demo: %s to %q; want 308 to https://demo.aim.test/x?y=1", resp.Status, loc)
	}

	var secs corev1.SecretList
	if err := admin.List(ctx, &secs, client.InNamespace(ns), client.HasLabels{certstore.LabelStorage}); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range secs.Items {
		keys = append(keys, s.Annotations[certstore.AnnotationKey])
	}
	joined := strings.Join(keys, "\n")
	if !strings.Contains(joined, "/demo.aim.test/demo.aim.test.crt") || strings.Contains(joined, "nope") {
		t.Errorf("stored keys:\n%s\nwant demo's certificate and nothing of nope", joined)
	}
}

// renderChart is the chart's objects for the release "aim" in ns with
// values set.
func renderChart(t *testing.T, ns string, set ...string) []byte {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		helm = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "helm")
		if _, err := os.Stat(helm); err != nil {
			t.Fatalf("no helm in PATH or %s: hack/manifests.sh installs it", helm)
		}
	}
	args := []string{"template", "aim", "../../../deploy/helm/aim", "--namespace", ns, "--kube-version", "1.32.0"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// applyRBAC creates the service accounts and RBAC objects of a rendered
// chart.
func applyRBAC(ctx context.Context, t *testing.T, c client.Client, manifests []byte) {
	t.Helper()
	applyKinds(ctx, t, c, manifests, "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
}

// applyKinds creates the objects of a rendered chart of the kinds named.
func applyKinds(ctx context.Context, t *testing.T, c client.Client, manifests []byte, kinds ...string) {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	n := 0
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(kinds, u.GetKind()) {
			continue
		}
		if err := c.Create(ctx, &u); err != nil {
			t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("the chart rendered none of %v", kinds)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
