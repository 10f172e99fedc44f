// Package apiserver runs a real kube-apiserver and etcd for a test
// (controller-runtime's envtest), on ports of their own, with no kubelet
// or controllers: what a test stores is what the API server itself does
// with it (validation, resource versions, conflicts, label selectors).
//
// The binaries come from $KUBEBUILDER_ASSETS, else /usr/bin/etcd
// (Debian's etcd-server) and the kube-apiserver test/cluster/build.sh
// builds into ~/.cache/aim/kube; a missing one fails the test.
package apiserver

import (
	"cmp"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubernetesVersion is the kube-apiserver test/cluster builds.
const KubernetesVersion = "v1.32.4"

// Start runs an API server until t ends and returns an admin's config.
// crdDirs are installed first.
func Start(t testing.TB, crdDirs ...string) *rest.Config {
	t.Helper()
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets(t),
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: len(crdDirs) > 0,
	}
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("starting etcd and kube-apiserver: %v", err)
	}
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stopping the API server: %v", err)
		}
	})
	return cfg
}

func assets(t testing.TB) string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	cache := cmp.Or(os.Getenv("AIM_KUBE_CACHE"), filepath.Join(home, ".cache/aim/kube")) // as test/cluster/lib.sh
	apiserver := filepath.Join(cache, "kubernetes-"+KubernetesVersion, "kube-apiserver")
	bins := []string{"/usr/bin/etcd", apiserver}
	for _, f := range bins {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: install Debian's etcd-server and run test/cluster/build.sh, or set KUBEBUILDER_ASSETS", err)
		}
	}
	dir := t.TempDir()
	for _, f := range bins {
		if err := os.Symlink(f, filepath.Join(dir, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
