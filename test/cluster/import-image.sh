#!/usr/bin/env bash
# Copies images from the Docker engine into the local test cluster's
# containerd (namespace k8s.io), so pods can run images built with
# `docker build` with imagePullPolicy: Never (nothing can be pulled here).
#
#   test/cluster/import-image.sh IMAGE...
#
# An image named without a registry (aim-smoke:1) is known to the cluster
# as docker.io/library/aim-smoke:1; a pod may name it either way.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -gt 0 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ -S "$CONTAINERD_SOCK" ] || die "no cluster containerd at $CONTAINERD_SOCK; run test/cluster/up.sh"

for image in "$@"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "Docker has no image $image"
  # Streamed: no temporary tar of a possibly large image.
  docker save "$image" | ctr_k8s images import --snapshotter overlayfs - >/dev/null ||
    die "importing $image into $CONTAINERD_SOCK failed"
  log "imported $image"
done
