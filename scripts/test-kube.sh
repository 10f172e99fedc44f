#!/usr/bin/env bash
# aim on Kubernetes, every test, on the local cluster of test/cluster:
#   1. the chart and what is generated from the code are up to date
#      (hack/generate.sh --check: CRD, deepcopy, RBAC, deploy/manifests,
#      helm lint);
#   2. the cluster's parts are built (cached in ~/.cache/aim/kube) and its
#      Debian packages installed (test/cluster/build.sh);
#   3. the operator against a real kube-apiserver and etcd (envtest, with
#      the chart's RBAC), and the gateway's certificate storage in Secrets
#      and Leases (alone, shared by two replicas against pebble, and in
#      aim gateway --tls=acme under the chart's RBAC), and the replicas'
#      shared TLS session ticket keys (TestClusterTicketKeys);
#   4. the cluster is brought up, its smoke check runs (pods, DNS,
#      NetworkPolicy), then test/e2e-kube (the chart, the examples through
#      the in-cluster gateway, the wake benchmark);
#   5. the cluster is taken down, whatever failed, if this run brought it
#      up: processes, mounts, bridge, iptables chains, cgroups.
#
#   scripts/test-kube.sh            everything above
#   KEEP_CLUSTER=1 scripts/test-kube.sh   leave the cluster and the release up
#
# Needs root, Docker and about 4 GB of memory. A missing prerequisite is a
# failure: nothing here skips.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
GO=${GO:-go}
CLUSTER_DIR=${AIM_CLUSTER_DIR:-/tmp/aim-cluster}

[ "$(id -u)" = 0 ] || { echo "scripts/test-kube.sh runs a kubelet and needs root" >&2; exit 1; }

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$SECONDS

step "generated files and the chart are up to date (hack/generate.sh --check)"
hack/generate.sh --check

step "the cluster's parts (test/cluster/build.sh)"
test/cluster/build.sh

step "the operator, the gateway's certificate storage, the API's backend (owners, secrets) and the build Job, against a real API server (envtest)"
$GO test -tags cluster -count=1 -timeout 10m ./internal/operator/ ./internal/kube/certstore/ ./internal/kube/backend/ ./internal/kube/kbuild/
# Two replicas sharing certificates in Secrets, and aim gateway --tls=acme
# under the chart's RBAC, with pebble; two replicas sharing ticket keys
# (TestClusterTicketKeys); the rest of these packages ran in
# go test ./... already.
$GO test -tags cluster -count=1 -timeout 10m -run '^TestCluster' ./internal/certs/ ./internal/kube/kubegateway/

# A cluster that already runs (an engineer's) is used and left up; one
# this run brings up is taken down on every way out, a failed test or a
# timeout's panic included.
brought_up=false
down() {
  local rc=$?
  if $brought_up && [ "${KEEP_CLUSTER:-}" != 1 ]; then
    step "taking the cluster down (test/cluster/down.sh)"
    test/cluster/down.sh || rc=1
  elif $brought_up; then
    echo "KEEP_CLUSTER=1: the cluster is left up; KUBECONFIG=$CLUSTER_DIR/kubeconfig"
  fi
  echo "scripts/test-kube.sh: exit $rc after $((SECONDS - start)) s"
  exit $rc
}
trap down EXIT
trap 'exit 130' INT TERM

if pgrep -f "kube-apiserver.*$CLUSTER_DIR/" >/dev/null; then
  step "a cluster runs already in $CLUSTER_DIR: using it, leaving it up"
else
  brought_up=true
  step "bringing the cluster up (test/cluster/up.sh)"
  test/cluster/up.sh
fi

# TestPodCost is a tool, not part of the run (-tags podcost); it must
# still build.
$GO vet -tags kube,podcost ./test/e2e-kube/

step "the cluster's smoke check (test/cluster)"
(cd test/cluster && $GO test -tags cluster -count=1 -timeout 15m .)

step "aim on the cluster (test/e2e-kube)"
# The release is kept for down.sh to remove with everything else when this
# run brought the cluster up; otherwise the test removes it itself.
keep=${KEEP_CLUSTER:-}
$brought_up && keep=1
KEEP_CLUSTER=$keep $GO test -tags kube -count=1 -timeout 60m -v ./test/e2e-kube/
