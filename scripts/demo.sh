#!/usr/bin/env bash
# The demo: builds aim and the base images, starts `aim serve`, deploys
# the example solutions and prints their URLs. It keeps serving until
# Ctrl-C; the solutions' containers stay and the next run adopts them.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_ADDR=${AIM_HTTP:-:8080}
DATA=${AIM_DATA:-aim-data}
PORT=${HTTP_ADDR##*:}

scripts/ensure-docker.sh
echo "==> building aim"
go build -o bin/aim ./cmd/aim
echo "==> building the base images (cached after the first run)"
images/build.sh all

mkdir -p "$DATA"
echo "==> starting aim serve on $HTTP_ADDR (log: $DATA/serve.log)"
bin/aim serve --data "$DATA" --http "$HTTP_ADDR" --client-config "$DATA/client.json" >"$DATA/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVE 2>/dev/null || { cat "$DATA/serve.log"; exit 1; }
  sleep 0.1
done
export AIM_SERVER="http://127.0.0.1:$PORT"
AIM_TOKEN=$(sed -n 's/.*"token": "\(.*\)".*/\1/p' "$DATA/client.json")
export AIM_TOKEN

urls=()
for dir in examples/*/; do
  [ -f "$dir/aim.yaml" ] || continue
  echo "==> deploying $dir"
  urls+=("$(bin/aim deploy -q "$dir")")
done

echo
echo "aim is serving. Open these in a browser (curl and Chromium resolve *.localhost to this machine):"
echo "  catalog: http://localhost:$PORT/"
for u in "${urls[@]}"; do echo "  $u"; done
echo
echo "The CLI: AIM_SERVER=$AIM_SERVER AIM_TOKEN=\$(sed -n 's/.*\"token\": \"\\(.*\\)\".*/\\1/p' $DATA/client.json) bin/aim ls"
if [ "${AIM_DEMO_EXIT:-}" = 1 ]; then
  exit 0
fi
echo "Ctrl-C stops aim (the solutions keep running; the next start adopts them)."
wait $SERVE
