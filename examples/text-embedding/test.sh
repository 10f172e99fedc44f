#!/usr/bin/env bash
# Tests of the text-embedding example.
#
#   ./test.sh          build the image, run the tests inside it (canonical:
#                      read-only root, /tmp tmpfs, uid 65534, no capabilities)
#   ./test.sh --host   run them on this host (needs python3-numpy,
#                      python3-fastapi, python3-uvicorn, python3-multipart);
#                      trains a model into a temporary directory first
set -euo pipefail
cd "$(dirname "$0")"
IMAGE=${IMAGE:-aim-example/text-embedding-api:dev}
if [ "${1:-}" = "--host" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  (cd app && python3 train.py --out "$tmp/lsa.npz")
  MODEL_PATH=$tmp/lsa.npz python3 -m unittest discover -s app/tests -t app -v
  exit
fi
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" . >/dev/null
docker run --rm --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  --user 65534:65534 --network none "$IMAGE" \
  python3 -m unittest discover -s /app/tests -t /app -v
