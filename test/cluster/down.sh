#!/usr/bin/env bash
# Stops the local test cluster that up.sh started and removes what it left
# on the host, so the next up.sh starts clean:
#   - its processes, by the PIDs up.sh recorded, and every container of its
#     containerd (with their shims);
#   - mounts under $AIM_CLUSTER_DIR, the pod bridge, the KUBE-*/CNI-* (and
#     kube-router's) iptables chains and ipsets, the kubepods cgroups, the
#     CNI result cache and shim sockets outside the state directory;
#   - the host sysctls the kubelet changed, restored to their values before up.
# Docker's containers, networks and DOCKER* chains are never touched.
# $AIM_CLUSTER_DIR is emptied except for logs/, kept for a post-mortem.
#
#   test/cluster/down.sh
#
# It runs to the end whatever fails on the way, and exits 1 if anything is
# left behind.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "down.sh needs root"
PIDS=$CLUSTER_DIR/pids
problems=0
problem() { log "$*"; problems=$((problems + 1)); }

if [ ! -d "$CLUSTER_DIR" ]; then
  log "no cluster state in $CLUSTER_DIR; cleaning the host anyway"
fi

# ours PID: the process's command line names $CLUSTER_DIR, so a PID the
# kernel has since given to another process is never signalled.
ours() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$CLUSTER_DIR"; }

# stop NAME...: SIGTERM to each recorded process at once, then up to 10 s
# for all of them to exit, then SIGKILL for those that did not.
stop() {
  local name pid pids=()
  for name in "$@"; do
    [ -f "$PIDS/$name.pid" ] || continue
    pid=$(cat "$PIDS/$name.pid")
    if kill -0 "$pid" 2>/dev/null && ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      pids+=("$name:$pid")
    fi
    rm -f "$PIDS/$name.pid"
  done
  local deadline=$((SECONDS + 10)) p
  for p in "${pids[@]}"; do
    while kill -0 "${p#*:}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
    if kill -0 "${p#*:}" 2>/dev/null; then
      log "${p%%:*} (${p#*:}) did not stop on SIGTERM in 10 s; killing it"
      kill -KILL "${p#*:}" 2>/dev/null
    fi
  done
}

# The node side first, so nothing restarts containers or rewrites rules
# while they are removed.
stop kube-router kube-proxy kube-scheduler kube-controller-manager kubelet

# Every container of this containerd: killed with runc (one signal each,
# no waiting on a grace period), then removed through containerd while it
# runs, which also ends their shims.
ids=()
RUNC_ROOT=$CLUSTER_DIR/run/runc/k8s.io
if [ -d "$RUNC_ROOT" ]; then
  for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
    ids+=("$id")
    runc --root "$RUNC_ROOT" kill --all "$id" KILL 2>/dev/null
  done
fi
if [ -S "$CONTAINERD_SOCK" ] && ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; then
  mapfile -t -O ${#ids[@]} ids < <(ctr_k8s containers ls -q 2>/dev/null)
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    # "not found": containerd removed it meanwhile, as its sandbox went.
    out=$(ctr_k8s tasks delete --force "$id" 2>&1) || grep -q 'not found' <<<"$out" ||
      problem "could not delete task $id: $out"
  done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do
    ctr_k8s containers delete "$id" >/dev/null 2>&1
  done
fi
if [ -d "$RUNC_ROOT" ]; then
  for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
    runc --root "$RUNC_ROOT" delete --force "$id" 2>/dev/null || problem "runc could not delete container $id"
  done
fi
stop containerd

# Shims outlive a killed containerd. Each is found by the socket address in
# its command line, which is this cluster's; its socket sits outside the
# state directory, at /run/containerd/s/sha256(address/namespace/id).
for f in $(grep -lsaF -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline); do
  d=${f%/cmdline}
  cmd=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
  case "$cmd" in
    *containerd-shim*"-address $CONTAINERD_SOCK "*) ;;
    *) continue ;;
  esac
  id=$(sed -n 's/.* -id \([^ ]*\).*/\1/p' <<<"$cmd")
  [ -n "$id" ] && ids+=("$id")
  kill -KILL "${d#/proc/}" 2>/dev/null
done
for id in "${ids[@]}"; do
  rm -f "/run/containerd/s/$(printf '%s' "$CONTAINERD_SOCK/k8s.io/$id" | sha256sum | cut -d' ' -f1)"
  # libcni's cache of the CRI plugin's loopback network, named by sandbox.
  rm -f "/var/lib/cni/results/cni-loopback-$id-lo"
done

# The control plane, the apiserver before etcd: it removes its endpoint
# from the kubernetes Service as it stops, and waits for etcd to do so.
stop kube-apiserver
others=()
for f in "$PIDS"/*.pid; do
  [ -e "$f" ] && others+=("$(basename "$f" .pid)")
done
[ ${#others[@]} = 0 ] || stop "${others[@]}"

# Mounts under the state directory (overlay root filesystems, network
# namespaces, pod volumes), deepest first.
unmount_all() {
  local m
  awk -v d="$CLUSTER_DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    sed 's/\\040/ /g' | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2- |
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
}
unmount_all

if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then
  ip link delete "$CNI_BRIDGE" || problem "could not delete the bridge $CNI_BRIDGE"
fi

# iptables: rules in other chains (INPUT, FORWARD, POSTROUTING...) that jump
# to a KUBE-* or CNI-* chain are deleted one by one, then those chains are
# flushed and removed. The rest of each table, Docker's included, stays as
# it is; a restore of whole tables could lose a rule Docker adds meanwhile.
clean_iptables() {
  local ipt=$1 table rules rule chains c
  command -v "$ipt-save" >/dev/null || return 0
  for table in filter nat mangle raw; do
    rules=$("$ipt-save" -t "$table" 2>/dev/null) || continue
    while IFS= read -r rule; do
      [ -n "$rule" ] || continue
      eval "$ipt -w -t $table -D ${rule#-A }" 2>/dev/null || problem "$ipt -t $table: could not delete: $rule"
    done < <(grep -E '^-A ' <<<"$rules" | grep -Ev '^-A (KUBE-|CNI-)' | grep -E -- '-[jg] (KUBE-|CNI-)')
    chains=$(grep -oE '^:(KUBE-|CNI-)[^ ]+' <<<"$rules" | cut -c2-)
    for c in $chains; do "$ipt" -w -t "$table" -F "$c" 2>/dev/null; done
    for c in $chains; do "$ipt" -w -t "$table" -X "$c" 2>/dev/null || problem "$ipt -t $table: could not remove chain $c"; done
  done
}
clean_iptables iptables
clean_iptables ip6tables

# kube-router's ipsets (Docker uses none); only once no rule refers to them.
if command -v ipset >/dev/null; then
  for s in $(ipset list -n 2>/dev/null | grep -E '^(inet6:)?(KUBE-|kube-router)'); do
    ipset destroy "$s" 2>/dev/null || problem "could not destroy ipset $s"
  done
fi

# The kubelet's cgroups (cgroupfs driver): /kubepods in every hierarchy.
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$root" ] || continue
  find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  [ -d "$root" ] && problem "could not remove $root (processes left in it?)"
done

if [ -f "$CLUSTER_DIR/sysctl.saved" ]; then
  while IFS= read -r kv; do
    sysctl -qw "$kv" >/dev/null || problem "could not restore sysctl $kv"
  done <"$CLUSTER_DIR/sysctl.saved"
fi

# What lives outside the state directory: libcni's result cache (the pod
# network's here, the loopback's above), and the kubelet's device-plugin
# directory, created whatever --root-dir says.
rm -f /var/lib/cni/results/aim-cluster-*
rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
if [ -d "$CLUSTER_DIR" ] && [ ! -e "$CLUSTER_DIR/var-lib-kubelet.preexisting" ] && [ -d /var/lib/kubelet ]; then
  rm -rf --one-file-system /var/lib/kubelet
fi

if [ -d "$CLUSTER_DIR" ]; then
  if awk -v d="$CLUSTER_DIR" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    problem "mounts remain under $CLUSTER_DIR; not removing it"
  else
    find "$CLUSTER_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf --one-file-system {} +
  fi
fi

if [ $problems -gt 0 ]; then
  log "down with $problems problem(s) left; see above"
  exit 1
fi
log "down; logs kept in $CLUSTER_DIR/logs"
