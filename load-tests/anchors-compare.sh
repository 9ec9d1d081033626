#!/usr/bin/env bash
# Sluice in the same table as the edge it replaces: copies ../shared/anchors (nginx+Lua,
# plain nginx, naive Node proxies) to a temp dir, starts Sluice with
# load-tests/configs/anchors.yaml (Redis 127.0.0.1:6390 and upstream 127.0.0.1:18080,
# both started by the anchors harness), and runs the harness with GATEWAY_URL.
#   ROUNDS=3 D=10 load-tests/anchors-compare.sh          (any run.sh variable passes through)
#   SLUICE_STORE=memory load-tests/anchors-compare.sh    (Sluice on the memory store)
#   W=2 SLUICE_WORKERS=2 load-tests/anchors-compare.sh   (2 nginx workers against 2 Sluice workers)
# SLUICE_WORKERS defaults to 1, like the harness's W: one process against one nginx worker.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
WORK=$(mktemp -d)
cp -r "$ANCHORS" "$WORK/anchors"
chmod -R u+w "$WORK/anchors"
cd "$WORK/anchors"
./setup.sh >/dev/null

[ -f "$ROOT/dist/gateway/cli.js" ] || (cd "$ROOT" && npm run build >/dev/null)
export SLUICE_PORT=${SLUICE_PORT:-8080} SLUICE_ADMIN_PORT=${SLUICE_ADMIN_PORT:-9090}
node "$ROOT/dist/gateway/cli.js" --config "$ROOT/load-tests/configs/anchors.yaml" --workers "${SLUICE_WORKERS:-1}" > "$WORK/sluice.log" 2>&1 &
SLUICE_PID=$!
trap 'kill $SLUICE_PID 2>/dev/null; wait $SLUICE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  grep -q 'sluice listening' "$WORK/sluice.log" && break
  sleep 0.1
done

GATEWAY_URL=${GATEWAY_URL:-http://127.0.0.1:$SLUICE_PORT/} \
GATEWAY_NAME=${GATEWAY_NAME:-sluice-${SLUICE_STORE:-redis}} \
GATEWAY_HEADERS=${GATEWAY_HEADERS:-'X-API-Key: bench'} \
GATEWAY_PIDS=$SLUICE_PID \
RESULTS_DIR=${RESULTS_DIR:-$ROOT/load-tests/out} \
./run.sh
