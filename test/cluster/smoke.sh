#!/usr/bin/env bash
# The smoke check of the local test cluster (up.sh must have run): the Go
# test in this directory, behind the "cluster" build tag. It builds and
# imports a FROM-scratch image, then checks pods answer, Service DNS names,
# NetworkPolicy refusals and the time to scale a Deployment from 0 to 1.
#
#   test/cluster/smoke.sh [go test flags, e.g. -run NetworkPolicy]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
export PATH=/usr/local/go/bin:$PATH
cd "$CLUSTER_SRC"
exec go test -tags cluster -count=1 -timeout 15m -v "$@" .
