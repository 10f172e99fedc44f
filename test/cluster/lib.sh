# Shared by build.sh, up.sh, down.sh and import-image.sh: versions, where
# things are cached and where the cluster keeps its state. Sourced, not run.

K8S_VERSION=v1.32.4
COREDNS_VERSION=v1.11.3
# The only kube-router v2 release the Go module proxy serves.
KUBE_ROUTER_VERSION=v2.1.0

CLUSTER_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBE_CACHE=${AIM_KUBE_CACHE:-$HOME/.cache/aim/kube}
K8S_BIN=$KUBE_CACHE/kubernetes-$K8S_VERSION
COREDNS_DIR=$KUBE_CACHE/coredns-$COREDNS_VERSION
KUBE_ROUTER_DIR=$KUBE_CACHE/kube-router-$KUBE_ROUTER_VERSION
# The pause image is keyed by its source, so an edit rebuilds it.
PAUSE_KEY=$(sha256sum "$CLUSTER_SRC/tools/pause/main.go" | cut -c1-12)
PAUSE_DIR=$KUBE_CACHE/pause-$PAUSE_KEY
PAUSE_IMAGE=localhost/aim/pause:$PAUSE_KEY
COREDNS_IMAGE=localhost/aim/coredns:$COREDNS_VERSION

CLUSTER_DIR=${AIM_CLUSTER_DIR:-/tmp/aim-cluster}
CONTAINERD_SOCK=$CLUSTER_DIR/run/containerd.sock
KUBECONFIG_ADMIN=$CLUSTER_DIR/kubeconfig
# The NodePort of the chart's in-cluster registry, when a test installs it:
# the node's containerd pulls <node address>:$REGISTRY_NODE_PORT/... over
# plain HTTP (conf/certs.d).
REGISTRY_NODE_PORT=${AIM_REGISTRY_NODE_PORT:-30500}
# The NodePort of a second, private registry (one behind a login) that
# test/e2e-kube runs for its registry-login test; also pulled over HTTP.
PRIVATE_REGISTRY_NODE_PORT=${AIM_PRIVATE_REGISTRY_NODE_PORT:-30501}

# The network of the cluster. 10.96.0.0/12 and 10.244.0.0/16 are the
# kubeadm defaults; they do not overlap Docker's 172.17/16 or its user
# networks (192.168.x here).
SERVICE_CIDR=10.96.0.0/12
KUBERNETES_SVC_IP=10.96.0.1
DNS_IP=10.96.0.10
CLUSTER_CIDR=10.244.0.0/16
POD_CIDR=10.244.0.0/24
CNI_BRIDGE=aimcni0
NODE_NAME=${AIM_NODE_NAME:-$(hostname | tr '[:upper:]' '[:lower:]')}

# Debian packages the cluster runs on.
APT_PACKAGES="etcd-server containerd runc containernetworking-plugins ipset iptables iproute2 openssl curl"

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# kubectl from PATH, else the one build.sh builds where none is installed.
kubectl_bin() {
  if command -v kubectl >/dev/null 2>&1; then
    command -v kubectl
  elif [ -x "$K8S_BIN/kubectl" ]; then
    echo "$K8S_BIN/kubectl"
  else
    die "no kubectl on PATH and none built; run test/cluster/build.sh"
  fi
}

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
