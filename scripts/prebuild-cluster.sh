#!/usr/bin/env bash
# Starts test/cluster/build.sh in the background, at the lowest priority,
# so that on a fresh machine the cluster's parts (20-40 minutes of Go
# builds) compile while the Go tests run, mostly in the time those spend
# waiting on containers. test/cluster/build.sh takes a lock: the run that
# scripts/test-kube.sh starts later waits for this one, then finds the
# parts cached (or, if this one failed, builds them itself and fails with
# its own message). With a warm cache this is a second's work.
#
# Debian's packages are installed first, in the foreground: apt takes one
# caller at a time, and the Go tests install chromium while they run.
set -euo pipefail
cd "$(dirname "$0")/.."
test/cluster/build.sh --packages
log=${TMPDIR:-/tmp}/aim-cluster-build.log
echo "==> building the cluster's parts in the background (log: $log)"
nohup nice -n 19 test/cluster/build.sh >"$log" 2>&1 </dev/null &
