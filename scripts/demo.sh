#!/usr/bin/env bash
# The demo: builds aim and the base images, starts a local OpenID
# provider (test/oidcop's aim-oidcop, with two demo users) and `aim serve`
# signing people in with it, deploys the example solutions and prints
# their URLs and how to sign in. It keeps serving until Ctrl-C; the
# solutions' containers stay and the next run adopts them.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_ADDR=${AIM_HTTP:-:8080}
DATA=${AIM_DATA:-aim-data}
PORT=${HTTP_ADDR##*:}
OIDC_ADDR=${AIM_DEMO_OIDC_ADDR:-127.0.0.1:5556}
PREFIX=${AIM_DOCKER_PREFIX:-aim}
APEX="http://localhost:$PORT"

scripts/ensure-docker.sh
echo "==> building aim and the demo's OpenID provider"
go build -o bin/aim ./cmd/aim
go build -o bin/aim-oidcop ./test/oidcop/cmd/aim-oidcop
if [ "${AIM_DEMO_SKIP_IMAGES:-}" != 1 ]; then
  echo "==> building the base images (cached after the first run)"
  images/build.sh all
fi

mkdir -p "$DATA"
echo "==> starting the OpenID provider on $OIDC_ADDR (log: $DATA/oidcop.log)"
# Its demo users: alice (password alice, group aim-admins), bob (password bob).
bin/aim-oidcop -issuer "http://$OIDC_ADDR" -client-id aim-demo -client-secret aim-demo-secret \
  -redirect-uri "$APEX/auth/callback" -post-logout-uri "$APEX/" >"$DATA/oidcop.out" 2>"$DATA/oidcop.log" &
OIDCOP=$!
SERVE=
trap 'kill $SERVE $OIDCOP 2>/dev/null; wait $SERVE $OIDCOP 2>/dev/null' EXIT INT TERM
for _ in $(seq 1 100); do
  [ -s "$DATA/oidcop.out" ] && break
  kill -0 $OIDCOP 2>/dev/null || { cat "$DATA/oidcop.log"; exit 1; }
  sleep 0.1
done
ISSUER=$(head -n1 "$DATA/oidcop.out")

echo "==> starting aim serve on $HTTP_ADDR, signing people in at $ISSUER (log: $DATA/serve.log)"
# The client secret goes by the environment, never the command line.
AIM_OIDC_CLIENT_SECRET=aim-demo-secret bin/aim serve --data "$DATA" --http "$HTTP_ADDR" --client-config "$DATA/client.json" --docker-prefix "$PREFIX" \
  --oidc-issuer "$ISSUER" --oidc-client-id aim-demo --oidc-admin-group aim-admins >"$DATA/serve.log" 2>&1 &
SERVE=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  kill -0 $SERVE 2>/dev/null || { cat "$DATA/serve.log"; exit 1; }
  sleep 0.1
done
export AIM_SERVER="http://127.0.0.1:$PORT"
AIM_TOKEN=$(sed -n 's/.*"token": "\(.*\)".*/\1/p' "$DATA/client.json")
export AIM_TOKEN

urls=()
if [ "${AIM_DEMO_SKIP_IMAGES:-}" != 1 ]; then
  for dir in examples/*/; do
    [ -f "$dir/aim.yaml" ] || continue
    echo "==> deploying $dir"
    urls+=("$(bin/aim deploy -q "$dir")")
  done
fi

echo
echo "aim is serving. Open these in a browser (curl and Chromium resolve *.localhost to this machine):"
echo "  catalog: $APEX/"
for u in "${urls[@]}"; do echo "  $u"; done
echo
echo "Sign in from the catalog's \"Sign in\" link, at the demo's OpenID provider ($ISSUER):"
echo "  alice / alice   an admin (group aim-admins)"
echo "  bob   / bob     a visitor"
echo "A solution whose aim.yaml says 'visibility: private' and lists 'access: {emails: [bob@example.test]}'"
echo "is in the catalog, and opens, for bob and the admins only."
echo
echo "The CLI: AIM_SERVER=$AIM_SERVER AIM_TOKEN=\$(sed -n 's/.*\"token\": \"\\(.*\\)\".*/\\1/p' $DATA/client.json) bin/aim ls"
if [ "${AIM_DEMO_EXIT:-}" = 1 ]; then
  exit 0
fi
echo "Ctrl-C stops aim (the solutions keep running; the next start adopts them)."
wait $SERVE
