#!/usr/bin/env bash
# Instructions per request of the whole gateway (one worker, memory store, anchors config),
# with 1 route and with the many-routes variant (load-tests/routes-config.ts), counted by
# callgrind: a figure the machine's other load does not move. Each variant runs twice,
# serving N1 and then N2 requests; (Ir(N2) - Ir(N1)) / (N2 - N1) is the steady-state cost
# of one request, start-up and JIT warm-up cancelled out. Slow: valgrind runs Node ~50x slower.
#   load-tests/routes-callgrind.sh            ROUTES="1 200" N1=1000 N2=4000
#   KEEP=DIR keeps each run's callgrind file (DIR/ROUTES-N.cg) for callgrind_annotate.
# V8 compiles and marks on background threads whose work lands between the two counts as
# it happens to be scheduled; --single-threaded (the default NODE_FLAGS here) does it all
# on the main thread, in the same order every run, so the counts repeat.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PATH=$ROOT/node_modules/.bin:$PATH
ROUTES=${ROUTES:-"1 200"} N1=${N1:-1000} N2=${N2:-4000}
PORT=${PORT:-18580} ADMIN=${ADMIN:-18590} UP=${UP:-18581}
WORK=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
[ -f "$ROOT/dist/load-tests/routes-config.js" ] || (cd "$ROOT" && npm run build >/dev/null)
node "$ROOT/dist/load-tests/echo-backend.js" "$UP" > /dev/null 2>&1 & pids+=($!)

# N requests, one at a time on one keep-alive connection, to the bench path.
send() {
  node -e '
    const { Pool } = require(process.argv[1]);
    const pool = new Pool(`http://127.0.0.1:${process.argv[2]}`, { connections: 1, headersTimeout: 0, bodyTimeout: 0 });
    let left = Number(process.argv[3]);
    const one = async () => { while (left-- > 0) { const r = await pool.request({ path: process.argv[4], method: "GET", headers: { "x-api-key": "bench" } }); await r.body.dump(); if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`); } };
    one().then(() => pool.close());
  ' "$ROOT/node_modules/undici" "$PORT" "$1" "$2"
}

ir() { # routes n -> total instructions
  # Valgrind's pace would trip the client-side timeouts: lifted here, they cost nothing per request.
  node "$ROOT/dist/load-tests/routes-config.js" "$ROOT/load-tests/configs/anchors.yaml" "$1" \
    | sed 's/^server:$/server:\n  headers_timeout_ms: 3600000\n  request_timeout_ms: 3600000\n  keep_alive_timeout_ms: 3600000\n  min_body_rate: 0/' > "$WORK/sluice.yaml"
  # Emptied here, not by the background job's redirect, which may come after the wait below
  # has read the previous run's 'sluice listening' and sent requests to a closed port.
  : > "$WORK/gw.log"
  SLUICE_STORE=memory SLUICE_PORT=$PORT SLUICE_ADMIN_PORT=$ADMIN SLUICE_UPSTREAM=http://127.0.0.1:$UP \
    valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$WORK/cg.%p" \
    node ${NODE_FLAGS---single-threaded} "$ROOT/dist/gateway/cli.js" --config "$WORK/sluice.yaml" --workers 1 > "$WORK/gw.log" 2>&1 &
  local gw=$!
  # Under valgrind, start-up takes minutes on a busy machine.
  until grep -q 'sluice listening' "$WORK/gw.log"; do
    kill -0 "$gw" 2>/dev/null || { echo "the gateway exited:" >&2; cat "$WORK/gw.log" >&2; exit 1; }
    sleep 1
  done
  send "$2" "$(node "$ROOT/dist/load-tests/routes-config.js" --path)"
  kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
  grep -h '^summary:' "$WORK"/cg.* | awk '{ print $2 }'
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cat "$WORK"/cg.* > "$KEEP/$1-$2.cg"; fi
  rm -f "$WORK"/cg.*
}

for r in $ROUTES; do
  a=$(ir "$r" "$N1"); b=$(ir "$r" "$N2")
  echo "$r routes: $(awk -v a="$a" -v b="$b" -v n="$((N2 - N1))" 'BEGIN { printf "%.0f", (b - a) / n }') instructions per request (Ir $a at $N1 requests, $b at $N2)"
done
