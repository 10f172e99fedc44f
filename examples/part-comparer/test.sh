#!/usr/bin/env bash
# Runs the Go tests of the three part-comparer modules (each its own module,
# standard library only). Uses the host's Go if there is one, otherwise the
# aim-base/go:1.26 image (images/build.sh go).
set -euo pipefail
cd "$(dirname "$0")"
status=0
for m in engine api web; do
  echo "== part-comparer/$m: go vet && go test"
  if command -v go >/dev/null 2>&1; then
    (cd "$m" && go vet ./... && go test -count=1 ./...) || status=1
  else
    docker run --rm -v "$PWD/$m:/src" -w /src aim-base/go:1.26 \
      sh -c 'go vet ./... && go test -count=1 ./...' || status=1
  fi
done
[ "$status" = 0 ] && echo "part-comparer: all tests passed" || echo "part-comparer: FAILED" >&2
exit "$status"
