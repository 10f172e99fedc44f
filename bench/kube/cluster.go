package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/aimhub/aim/internal/operator"
)

const (
	// namespace holds aim and the Solutions, as the chart installs them.
	namespace = "aim-system"
	// operatorUser is the chart's service account for the operator; the
	// API server authenticates the operator as it by a static token, and
	// the chart's RBAC (deploy/manifests/aim.yaml) authorises it.
	operatorUser = "system:serviceaccount:" + namespace + ":aim-operator"
	// serviceCIDR holds a cluster IP for each of up to 65,000 Services.
	serviceCIDR = "10.96.0.0/16"
	// podCIDR is where kwok takes the fake pods' IPs from.
	podCIDR = "10.128.0.1/16"
	// kwokAnnotation marks the nodes kwok plays.
	kwokAnnotation = "kwok.x-k8s.io/node"
)

// cluster is one run's etcd, control plane and kwok, all processes of the
// harness, in dir.
type cluster struct {
	dir   string
	url   string
	ca    []byte
	admin client.Client
	// adminCfg is the harness's own: system:masters, no client-side limit.
	adminCfg *rest.Config
	// kubeconfigs by user: "admin", "operator".
	kubeconfigs map[string]string

	mu    sync.Mutex
	procs []*proc
	// died is closed when a process of the cluster exits before stop.
	died     chan struct{}
	diedOnce sync.Once
	stopping bool
	cleanups []func()
}

func checkBinaries(ctx context.Context, c *config) error {
	var missing []string
	for _, f := range []string{
		filepath.Join(c.kubeBin, "kube-apiserver"),
		filepath.Join(c.kubeBin, "kube-controller-manager"),
		filepath.Join(c.kubeBin, "kube-scheduler"),
	} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: run test/cluster/build.sh, or name their directory with -kube-bin", strings.Join(missing, ", "))
	}
	if _, err := os.Stat(c.etcdBin); err != nil {
		return fmt.Errorf("etcd: %w (apt-get install etcd-server, or name it with -etcd)", err)
	}
	if _, err := os.Stat(c.aimBin); err != nil {
		return fmt.Errorf("the aim binary: %w (build it: make build)", err)
	}
	if _, err := os.Stat(c.kwokBin); err == nil {
		return nil
	}
	step("installing kwok %s into %s", kwokVersion, filepath.Dir(c.kwokBin))
	cmd := exec.CommandContext(ctx, "go", "install", "sigs.k8s.io/kwok/cmd/kwok@"+kwokVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(c.kwokBin))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("installing kwok %s: %w", kwokVersion, err)
	}
	if filepath.Base(c.kwokBin) != "kwok" {
		return fmt.Errorf("-kwok %s: go install names the binary kwok", c.kwokBin)
	}
	return nil
}

// startCluster brings up etcd, the API server (with the CRD and the
// chart's service accounts and RBAC), the controller manager, the
// scheduler and kwok, each waited for.
func startCluster(ctx context.Context, c config, dir string) (_ *cluster, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := portFree(c.port); err != nil {
		return nil, err
	}
	cl := &cluster{dir: dir, url: fmt.Sprintf("https://127.0.0.1:%d", c.port), died: make(chan struct{}), kubeconfigs: map[string]string{}}
	defer func() {
		if err != nil {
			err = cl.explain(err)
			cl.stop()
		}
	}()
	pki := filepath.Join(dir, "pki")
	if cl.ca, err = writePKI(pki); err != nil {
		return nil, fmt.Errorf("writing the cluster's keys: %w", err)
	}
	// Static tokens: each component its own user, so that API Priority
	// and Fairness classifies their requests as it would in a cluster
	// (system:masters is exempt from it; the operator is a service
	// account, in workload-low).
	users := []struct{ name, user, groups string }{
		{"admin", "bench-admin", "system:masters"},
		{"controller-manager", "system:kube-controller-manager", ""},
		{"scheduler", "system:kube-scheduler", ""},
		{"kwok", "kwok", ""},
		{"operator", operatorUser, "system:serviceaccounts,system:serviceaccounts:" + namespace + ",system:authenticated"},
	}
	var tokens strings.Builder
	for i, u := range users {
		tok := randomHex(16)
		fmt.Fprintf(&tokens, "%s,%s,uid-%d,%q\n", tok, u.user, i, u.groups)
		path := filepath.Join(dir, u.name+".kubeconfig")
		if err := writeKubeconfig(path, cl.url, cl.ca, tok); err != nil {
			return nil, err
		}
		cl.kubeconfigs[u.name] = path
		if u.name == "admin" {
			cl.adminCfg = &rest.Config{Host: cl.url, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{CAData: cl.ca}, QPS: -1}
		}
	}
	tokenFile := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens.String()), 0o600); err != nil {
		return nil, err
	}

	// etcd on tmpfs when there is one: the disk is shared with other
	// engineers' builds, and its fsyncs would weigh on every write.
	etcdData := filepath.Join(dir, "etcd")
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		etcdData = filepath.Join("/dev/shm", "aim-bench-kube-"+filepath.Base(filepath.Dir(dir))+"-"+filepath.Base(dir))
	}
	cl.onStop(func() { os.RemoveAll(etcdData) })
	clientPort, peerPort := freePort(), freePort()
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := cl.start("etcd", c.etcdBin,
		"--name=bench", "--data-dir="+etcdData,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=bench="+peerURL,
		"--quota-backend-bytes=4294967296", "--snapshot-count=10000",
		"--logger=zap", "--log-level=warn"); err != nil {
		return nil, err
	}

	if err := cl.start("kube-apiserver", filepath.Join(c.kubeBin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", c.port),
		"--tls-cert-file="+filepath.Join(pki, "apiserver.crt"), "--tls-private-key-file="+filepath.Join(pki, "apiserver.key"),
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range="+serviceCIDR,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file="+filepath.Join(pki, "sa.key"),
		"--profiling=false"); err != nil {
		return nil, err
	}
	if err := cl.waitReady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	scheme, err := operator.Scheme()
	if err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if cl.admin, err = client.New(cl.adminCfg, client.Options{Scheme: scheme}); err != nil {
		return nil, err
	}
	if err := cl.setUp(ctx); err != nil {
		return nil, err
	}

	burst := fmt.Sprint(2 * c.clusterQPS)
	if err := cl.start("kube-controller-manager", filepath.Join(c.kubeBin, "kube-controller-manager"),
		"--kubeconfig="+cl.kubeconfigs["controller-manager"],
		"--secure-port=0", "--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(pki, "sa.key"),
		"--root-ca-file="+filepath.Join(pki, "ca.crt"),
		"--cluster-signing-cert-file="+filepath.Join(pki, "ca.crt"),
		"--cluster-signing-key-file="+filepath.Join(pki, "ca.key"),
		fmt.Sprintf("--kube-api-qps=%d", c.clusterQPS), "--kube-api-burst="+burst,
		"--profiling=false"); err != nil {
		return nil, err
	}
	schedCfg := filepath.Join(dir, "scheduler.yaml")
	if err := os.WriteFile(schedCfg, fmt.Appendf(nil, `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: %s
  qps: %d
  burst: %s
leaderElection:
  leaderElect: false
`, cl.kubeconfigs["scheduler"], c.clusterQPS, burst), 0o644); err != nil {
		return nil, err
	}
	if err := cl.start("kube-scheduler", filepath.Join(c.kubeBin, "kube-scheduler"),
		"--config="+schedCfg, "--secure-port=0", "--profiling=false"); err != nil {
		return nil, err
	}
	// kwok has no client-side rate limit of its own.
	if err := cl.start("kwok", c.kwokBin,
		"--kubeconfig="+cl.kubeconfigs["kwok"],
		"--manage-nodes-with-annotation-selector="+kwokAnnotation+"=fake",
		"--cidr="+podCIDR, "--node-ip=10.127.0.1",
		// Leases, as kubelets keep them: without, kwok's heartbeats
		// come 20 to 45 s apart, and one late under load lets the node
		// lifecycle controller mark the node's pods not ready for good
		// (kwok sets a pod ready once only).
		"--node-lease-duration-seconds=40"); err != nil {
		return nil, err
	}
	return cl, nil
}

// setUp installs what the chart would before any controller starts: the
// namespace, the CRD, the service accounts and RBAC (not its Deployments:
// the operator runs outside the cluster), and lets the controller
// manager and kwok act as cluster-admin.
func (cl *cluster) setUp(ctx context.Context) error {
	if err := cl.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	if err := applyChart(ctx, cl.admin, "deploy/manifests/aim.yaml"); err != nil {
		return err
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "bench-kube-admins"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{
			// With --use-service-account-credentials=false the controller
			// manager acts as itself for every controller.
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "system:kube-controller-manager"},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "kwok"},
		},
	}
	if err := cl.admin.Create(ctx, crb); err != nil {
		return fmt.Errorf("binding cluster-admin: %w", err)
	}
	return nil
}

// addNodes creates n nodes for kwok to play and waits until kwok reports
// every one Ready. Each holds far more than the runs need (a 1-CPU,
// 512 MiB pod per component, up to 10,000 pods), so that capacity never
// decides where, or whether, a pod runs.
func (cl *cluster) addNodes(ctx context.Context, n int) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("256"),
		corev1.ResourceMemory: resource.MustParse("2Ti"),
		corev1.ResourcePods:   resource.MustParse("256"),
	}
	for i := range n {
		name := fmt.Sprintf("kwok-node-%03d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokAnnotation: "fake"},
				Labels: map[string]string{
					"type":                          "kwok",
					corev1.LabelHostname:            name,
					corev1.LabelOSStable:            "linux",
					corev1.LabelArchStable:          "amd64",
					"node-role.kubernetes.io/agent": "",
				},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if err := cl.admin.Create(ctx, node); err != nil {
			return fmt.Errorf("creating node %s: %w", name, err)
		}
	}
	// Setting up, not measuring: polling is good enough here.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var nodes corev1.NodeList
		if err := cl.admin.List(ctx, &nodes); err != nil {
			return fmt.Errorf("listing nodes: %w", err)
		}
		ready := 0
		for _, nd := range nodes.Items {
			for _, c := range nd.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready == n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kwok reported %d of %d nodes Ready after 2 minutes", ready, n)
		}
		if err := cl.sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	// Pods need the namespace's default service account, which the
	// controller manager creates.
	for {
		var sa corev1.ServiceAccount
		err := cl.admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "default"}, &sa)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default service account in %s after 2 minutes: %w", namespace, err)
		}
		if err := cl.sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits d, or returns early with an error when ctx ends or a
// process of the cluster died.
func (cl *cluster) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-cl.died:
		return errors.New("a process of the cluster exited")
	case <-t.C:
		return nil
	}
}

func (cl *cluster) waitReady(ctx context.Context, limit time.Duration) error {
	cs, err := kubernetes.NewForConfig(cl.adminCfg)
	if err != nil {
		return err
	}
	rc := cs.Discovery().RESTClient()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if last = rc.Get().AbsPath("/readyz").Do(ctx).Error(); last == nil {
			return nil
		}
		if err := cl.sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("kube-apiserver not ready after %s: %w", limit, last)
}

// proc is a process of the harness: its own process group, its output
// in a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// start runs a process of the cluster; if it exits before stop, died is
// closed.
func (cl *cluster) start(name, bin string, args ...string) error {
	p, err := startProc(cl.dir, name, bin, nil, args...)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	cl.procs = append(cl.procs, p)
	cl.mu.Unlock()
	go func() {
		<-p.done
		cl.mu.Lock()
		stopping := cl.stopping
		cl.mu.Unlock()
		if !stopping {
			cl.diedOnce.Do(func() { close(cl.died) })
		}
	}()
	return nil
}

func startProc(dir, name, bin string, env []string, args ...string) (*proc, error) {
	log := filepath.Join(dir, name+".log")
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own group, so that stop reaches whatever it starts; killed
	// with the harness should the harness die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: log, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// stop ends the process group: SIGTERM, then SIGKILL after 10 seconds.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// onStop runs f when the cluster stops, after its processes.
func (cl *cluster) onStop(f func()) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.cleanups = append(cl.cleanups, f)
}

// stop ends every process, the last started first.
func (cl *cluster) stop() {
	cl.mu.Lock()
	cl.stopping = true
	procs := cl.procs
	cleanups := cl.cleanups
	cl.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	for _, f := range cleanups {
		f()
	}
}

// explain adds the last lines of the log of every process that exited.
func (cl *cluster) explain(err error) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var b strings.Builder
	for _, p := range cl.procs {
		if p.exited() && !cl.stopping {
			fmt.Fprintf(&b, "\n--- %s exited (%v); last lines of %s\n%s", p.name, p.cmd.ProcessState, p.log, tail(p.log, 15))
		}
	}
	if b.Len() == 0 {
		return err
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// writePKI writes a CA, the API server's serving certificate signed by
// it, and the service-account signing key; it returns the CA in PEM.
func writePKI(dir string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "aim bench/kube CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(7 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":        caPEM,
		"apiserver.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
	}
	for name, k := range map[string]*ecdsa.PrivateKey{"ca.key": caKey, "apiserver.key": srvKey, "sa.key": saKey} {
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		files[name] = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

func writeKubeconfig(path, server string, ca []byte, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["bench"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench", Namespace: namespace}
	cfg.CurrentContext = "bench"
	return clientcmd.WriteToFile(*cfg, path)
}

func portFree(port int) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d for kube-apiserver is taken (choose another with -port): %w", port, err)
	}
	return l.Close()
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
