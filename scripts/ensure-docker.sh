#!/usr/bin/env bash
# Makes sure a Docker engine answers: installs Debian's docker.io when the
# engine is missing and starts dockerd when none runs. Integration tests
# need a real engine; they never skip for the lack of one.
set -euo pipefail

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "==> installing the Docker engine (Debian's docker.io)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q docker.io >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd"
  mkdir -p /var/log
  # dockerd outlives this script: it must not inherit a descriptor above 2,
  # such as a flock(1) lock of whoever ran this (test/cluster/build.sh's
  # cache lock, a run holding /tmp/aim-cluster-use.lock), or it holds that
  # lock for as long as it runs.
  (
    for fd in /proc/self/fd/*; do
      n=${fd##*/}
      [ "$n" -gt 2 ] 2>/dev/null && eval "exec $n>&-"
    done
    exec nohup dockerd >/var/log/dockerd.log 2>&1
  ) 2>/dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
if ! docker info >/dev/null 2>&1; then
  echo "the Docker engine did not start; see /var/log/dockerd.log" >&2
  tail -20 /var/log/dockerd.log >&2 || true
  exit 1
fi
echo "==> Docker engine $(docker version --format '{{.Server.Version}}') answers"
