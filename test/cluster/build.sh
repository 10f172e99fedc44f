#!/usr/bin/env bash
# Builds every part of the local test cluster that is not a Debian package,
# and installs the Debian packages that are missing. Nothing is pulled from
# an image registry; Go modules come from the module proxy.
#
#   test/cluster/build.sh          build what the cache lacks
#   test/cluster/build.sh --force  rebuild everything
#   test/cluster/build.sh --packages  install the Debian packages only
#
# Cached under ${AIM_KUBE_CACHE:-$HOME/.cache/aim/kube}, one directory per
# part and version, so a second run builds nothing:
#   kubernetes-v1.32.4/   kube-apiserver kube-controller-manager kube-scheduler
#                         kubelet kube-proxy (and kubectl when none is installed)
#   coredns-v1.11.3/      coredns, image.tar (FROM scratch)
#   kube-router-v2.1.0/   kube-router (a host process; only its firewall runs)
#   pause-<src hash>/     pause, image.tar (FROM scratch)
#
# Go builds run one at a time: the machine's cores are shared.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export PATH=/usr/local/go/bin:$PATH

force=false
packages_only=false
case "${1:-}" in
  --force) force=true ;;
  --packages) packages_only=true ;;
  "") ;;
  *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

[ "$(id -u)" = 0 ] || die "build.sh installs Debian packages and needs root"
command -v go >/dev/null || die "go is required (expected at /usr/local/go/bin)"

install_packages() {
  local missing=()
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
  # Debian starts etcd and containerd as services on install. The cluster
  # runs its own, so a policy-rc.d (honoured by invoke-rc.d and
  # deb-systemd-invoke) keeps theirs from starting, unless the machine
  # already has a policy of its own.
  local own_policy=false
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=true
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  if $own_policy; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
}

# Runs "$@" (a build writing into $tmp), then moves $tmp to $dir, so a
# build cut short never leaves a directory that looks finished.
cached() {
  local dir=$1 what=$2; shift 2
  if [ -d "$dir" ] && ! $force; then
    log "$what: cached in $dir"
    return
  fi
  log "$what: building"
  local start=$SECONDS
  # Left by a run that was cut short (the lock below rules out a live one).
  rm -rf "$dir".tmp.*
  tmp=$dir.tmp.$$
  mkdir -p "$tmp"
  "$@"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "$what: built in $((SECONDS - start)) s"
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local f="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    # Without these, components report v0.0.0 and the node's kubelet version
    # fails version-skew checks.
    f+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    f+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$f"
}

build_kubernetes() {
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
  command -v kubectl >/dev/null 2>&1 || cmds+=(kubectl)
  local pkgs=()
  for c in "${cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  # One go build for all: they share most packages.
  (cd "$CLUSTER_SRC/tools" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp/" "${pkgs[@]}")
}

# An image FROM scratch holding one static binary as its entrypoint, saved
# as a docker-archive tar that `ctr images import` reads.
scratch_image() {
  local bin=$1 image=$2 out=$3
  shift 3
  local ctx
  ctx=$(mktemp -d)
  cp "$bin" "$ctx/"
  {
    echo "FROM scratch"
    echo "COPY $(basename "$bin") /$(basename "$bin")"
    for line in "$@"; do echo "$line"; done
    echo "ENTRYPOINT [\"/$(basename "$bin")\"]"
  } >"$ctx/Dockerfile"
  # Not $out: that is where the image goes.
  local built
  built=$(DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" 2>&1) || die "docker build of $image: $built"
  docker save -o "$out" "$image"
  rm -rf "$ctx"
}

build_pause() {
  (cd "$CLUSTER_SRC/tools" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/pause" ./pause)
  scratch_image "$tmp/pause" "$PAUSE_IMAGE" "$tmp/image.tar" "USER 65535:65535"
}

build_coredns() {
  # go install, not a require in tools/: CoreDNS pins its own dependency
  # versions, which differ from Kubernetes'.
  GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  scratch_image "$tmp/coredns" "$COREDNS_IMAGE" "$tmp/image.tar" "EXPOSE 53 53/udp"
}

build_kube_router() {
  GOBIN=$tmp CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
}

total=$SECONDS
mkdir -p "$KUBE_CACHE"
# One build.sh at a time: two would race on the cache, and two heavy Go
# builds at once overload the machine.
exec 9>"$KUBE_CACHE/.lock"
if ! flock -n 9; then
  log "another build.sh holds $KUBE_CACHE/.lock; waiting for it"
  flock 9
fi
install_packages
if $packages_only; then
  exit 0
fi
"$CLUSTER_SRC/../../scripts/ensure-docker.sh" >/dev/null
cached "$PAUSE_DIR" "pause image $PAUSE_IMAGE" build_pause
cached "$K8S_BIN" "Kubernetes $K8S_VERSION" build_kubernetes
# A cache made where kubectl was installed has none.
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x "$K8S_BIN/kubectl" ]; then
  log "kubectl: none installed; building it"
  (cd "$CLUSTER_SRC/tools" &&
    CGO_ENABLED=0 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$K8S_BIN/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl)
  mv "$K8S_BIN/kubectl.tmp" "$K8S_BIN/kubectl"
fi
cached "$KUBE_ROUTER_DIR" "kube-router $KUBE_ROUTER_VERSION" build_kube_router
cached "$COREDNS_DIR" "CoreDNS $COREDNS_VERSION" build_coredns
log "all parts ready in $KUBE_CACHE ($((SECONDS - total)) s)"
