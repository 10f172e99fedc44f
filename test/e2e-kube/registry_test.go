//go:build kube

package e2ekube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The chart's in-cluster registry, as this cluster reaches it: builds push
// to its Service, the node pulls from its NodePort on the node's address
// over HTTP (test/cluster/up.sh's containerd hosts.toml; node ports are on
// that address only). This host's Docker pushes the base images the
// examples build FROM through a port-forward on 127.0.0.1, which Docker
// takes over plain HTTP.
const (
	registryNodePort    = 30500
	registryForwardPort = 30599
	registryPV          = "aim-e2e-registry"
)

// registryHost is <node address>:<registryNodePort>, the chart's
// registry.host; privateRegistryHost is <node address>:
// <privateRegistryNodePort>, TestRegistryLogin's registry (both set by
// registryVolume).
var registryHost, privateRegistryHost string

// baseImages are pushed to the registry, where builds find them: the
// chart's builds.mirrorDockerHub resolves FROM aim-base/go:1.26 there.
var baseImages = []string{"aim-base/go:1.26"}

// registryVolume gives the registry's claim a hostPath volume on the node:
// this cluster has no StorageClass. The claim outlives an uninstall (the
// chart keeps it), so a volume left from a run is made again for it.
func registryVolume() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes.Items {
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && registryHost == "" {
				registryHost = fmt.Sprintf("%s:%d", a.Address, registryNodePort)
				privateRegistryHost = fmt.Sprintf("%s:%d", a.Address, privateRegistryNodePort)
			}
		}
	}
	if registryHost == "" {
		return fmt.Errorf("no node has an InternalIP for the registry's NodePort")
	}
	dir := filepath.Join(clusterDir, "registry-e2e")
	pvs := kc.CoreV1().PersistentVolumes()
	if pv, err := pvs.Get(ctx, registryPV, metav1.GetOptions{}); err == nil {
		if pv.Status.Phase == corev1.VolumeBound || pv.Status.Phase == corev1.VolumeAvailable {
			return nil
		}
		if err := pvs.Delete(ctx, registryPV, metav1.DeleteOptions{}); err != nil {
			return err
		}
		if err := waitFor(time.Minute, time.Second, "the old registry volume gone", func() (bool, error) {
			_, err := pvs.Get(ctx, registryPV, metav1.GetOptions{})
			return apierrors.IsNotFound(err), err
		}); err != nil {
			return err
		}
	}
	// A new volume is an empty registry: what an earlier run pushed
	// (images, build caches) goes with its volume.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The registry runs as nobody; a hostPath takes no fsGroup.
	if err := os.Chown(dir, 65534, 65534); err != nil {
		return err
	}
	hp := corev1.HostPathDirectoryOrCreate
	_, err = pvs.Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: registryPV},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("5Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: release + "-registry"},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir, Type: &hp}},
		},
	}, metav1.CreateOptions{})
	return err
}

// pushBaseImages pushes the base images and the test server, which the
// hand-written Solutions then pull from the registry like a user's
// cluster would (images["testserver"] becomes its registry name; the
// imported one stays as "testserver-local" for pods outside Solutions).
func pushBaseImages() error {
	imgs := append([]string{images["testserver"]}, baseImages...)
	if textEmbedding {
		imgs = append(imgs, "aim-base/python:bookworm")
	}
	pushed, err := pushImages(imgs...)
	if err != nil {
		return err
	}
	images["testserver-local"], images["testserver"] = images["testserver"], pushed[0]
	return nil
}

// pushImages logs this host's Docker in to the registry (with the
// chart's generated password) and pushes local images, returning their
// names as the node pulls them.
func pushImages(imgs ...string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sec, err := kc.CoreV1().Secrets(ns).Get(ctx, release+"-registry", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the registry's password: %w", err)
	}
	return pushTo(pushTarget{namespace: ns, service: release + "-registry", forwardPort: registryForwardPort,
		user: "aim", password: string(sec.Data["password"]), nodeHost: registryHost}, imgs...)
}

// pushTarget is a registry in the cluster that this host's Docker
// pushes to through a port-forward to its Service's port 5000.
type pushTarget struct {
	namespace, service string
	forwardPort        int
	user, password     string
	// nodeHost is the registry as the node pulls from it.
	nodeHost string
}

// pushTo logs this host's Docker in to the registry of to (in a Docker
// configuration of the test's own) through a port-forward and pushes
// local images, returning their names as the node pulls them.
func pushTo(to pushTarget, imgs ...string) ([]string, error) {
	cfg, err := os.MkdirTemp("", "aim-e2e-kube-docker-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cfg)
	fwd := exec.Command(kubectlPath, "--kubeconfig", kubeconfig, "-n", to.namespace, "port-forward",
		"svc/"+to.service, fmt.Sprintf("%d:5000", to.forwardPort))
	if err := fwd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = fwd.Process.Kill(); _ = fwd.Wait() }()
	local := fmt.Sprintf("127.0.0.1:%d", to.forwardPort)
	env := []string{"DOCKER_CONFIG=" + cfg}
	if err := waitFor(30*time.Second, 500*time.Millisecond, "the port-forward to "+to.service, func() (bool, error) {
		_, err := shIn(repo, env, to.password, "docker", "login", "-u", to.user, "--password-stdin", local)
		return err == nil, err
	}); err != nil {
		return nil, err
	}
	var out []string
	for _, img := range imgs {
		start := time.Now()
		ref := local + "/" + img
		if _, err := sh(repo, env, "docker", "tag", img, ref); err != nil {
			return nil, err
		}
		if _, err := sh(repo, env, "docker", "push", "-q", ref); err != nil {
			return nil, err
		}
		// The tag only served the push.
		_, _ = sh(repo, env, "docker", "rmi", ref)
		logf("pushed %s to %s in %s", img, to.service, time.Since(start).Round(100*time.Millisecond))
		out = append(out, to.nodeHost+"/"+img)
	}
	return out, nil
}
