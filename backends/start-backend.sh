#!/bin/sh
# Starts one image backend with the process-level tuning applied by exec, so no
# launcher process stays around (sluice-backend would otherwise re-exec itself with
# the same settings; see backends/README.md, "Process tuning").
#   backends/start-backend.sh --port 7001 [flags...]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)

# Allocator: jemalloc when installed (flat RSS under libvips' many threads), else cap
# glibc's per-thread arenas. An operator's own LD_PRELOAD/MALLOC_ARENA_MAX wins.
if [ -z "${MALLOC_ARENA_MAX:-}" ] && ! printf '%s' "${LD_PRELOAD:-}" | grep -q jemalloc; then
  jemalloc=""
  if [ "${SLUICE_BACKEND_JEMALLOC:-}" != "off" ]; then
    for f in ${SLUICE_BACKEND_JEMALLOC:-} /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 /lib/x86_64-linux-gnu/libjemalloc.so.2 \
             /usr/lib/aarch64-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2 \
             /usr/local/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so; do
      if [ -f "$f" ]; then jemalloc=$f; break; fi
    done
  fi
  if [ -n "$jemalloc" ]; then
    export LD_PRELOAD="$jemalloc${LD_PRELOAD:+:$LD_PRELOAD}"
  else
    export MALLOC_ARENA_MAX=2
  fi
fi

# One libuv thread per concurrent sharp job plus 4 for fs and DNS. Must be in the
# environment before node starts: the pool is created by the first async fs call.
if [ -z "${UV_THREADPOOL_SIZE:-}" ]; then
  conc=${SLUICE_BACKEND_CONCURRENCY:-$(nproc 2>/dev/null || echo 4)}
  prev=""
  for a in "$@"; do
    case "$a" in --concurrency=*) conc=${a#--concurrency=} ;; esac
    if [ "$prev" = "--concurrency" ]; then conc=$a; fi
    prev=$a
  done
  export UV_THREADPOOL_SIZE=$((conc + 4))
fi

# V8's initial old space (--heap-initial-mb, default 128; 0 = V8's default): a node
# flag, so it is given here (see backends/README.md, "Process tuning").
heap=${SLUICE_BACKEND_HEAP_INITIAL_MB:-128}
prev=""
for a in "$@"; do
  case "$a" in --heap-initial-mb=*) heap=${a#--heap-initial-mb=} ;; esac
  if [ "$prev" = "--heap-initial-mb" ]; then heap=$a; fi
  prev=$a
done
heapflag=""
if [ "$heap" != "0" ]; then heapflag="--initial-old-space-size=$heap"; fi

exec node $heapflag "$here/dist/backends/cli.js" --no-reexec "$@"
