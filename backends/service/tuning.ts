import { existsSync } from 'node:fs';
import type { BackendConfig } from './config.js';

/**
 * The process environment a backend should run under. These settings are read by the
 * C runtime and by libuv once, at start (the allocator when the process is exec'd,
 * UV_THREADPOOL_SIZE when the first async fs/dns/sharp job starts the pool, which
 * Node's ESM loader already does while loading this file), so they cannot be applied
 * from inside the running process: the CLI re-execs itself with them (or
 * backends/start-backend.sh sets them and execs node directly).
 *
 * - Allocator: libvips allocates and frees large pixel buffers from many threads;
 *   glibc malloc gives each thread its own arena and returns memory to the OS poorly,
 *   so RSS of a busy image server creeps up for hours. jemalloc keeps it flat, so it is
 *   preloaded when installed; otherwise MALLOC_ARENA_MAX=2 caps glibc's arenas, which
 *   gets most of the benefit for a small cost in lock contention.
 * - UV_THREADPOOL_SIZE: every sharp pipeline occupies one libuv thread while it runs,
 *   and so do result-file writes and DNS lookups for fetches. The default of 4 would
 *   make `--concurrency 8` silently run 4 jobs at a time, and fs/DNS would queue behind
 *   images; concurrency + 4 leaves room for both.
 * - V8's initial old space (`--heap-initial-mb`, a node flag, so also fixed at exec):
 *   every upload is copied out of the HTTP parser and into one buffer, and every output
 *   is a new buffer, about twice the input's size per image outside the JavaScript heap.
 *   V8 counts those bytes against the old generation's limit, which for this process's
 *   ~27 MB heap is small: a full collection every ~20 images (bench:images), about
 *   1 ms of CPU per 20 ms JPEG. A larger initial old space makes them about six times
 *   rarer, for the garbage buffers it lets wait (load-tests/PROFILE.md, "The image path").
 */
const JEMALLOC_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
  '/usr/local/lib/libjemalloc.so.2',
  '/usr/local/lib/libjemalloc.so',
];

/** SLUICE_BACKEND_JEMALLOC: a path to use, or "off" to never preload it. */
export function findJemalloc(env: NodeJS.ProcessEnv): string | undefined {
  const chosen = env.SLUICE_BACKEND_JEMALLOC;
  if (chosen === 'off') return undefined;
  if (chosen !== undefined && chosen !== '') return existsSync(chosen) ? chosen : undefined;
  return JEMALLOC_CANDIDATES.find((p) => existsSync(p));
}

export interface Tuning {
  /** The environment to run under. */
  readonly env: NodeJS.ProcessEnv;
  /** True when `env` differs from the current one in a way only a re-exec can apply. */
  readonly reexecNeeded: boolean;
  readonly allocator: string;
  readonly uvThreadpoolSize: number;
  /** Node flags the backend must run with that `execArgv` lacks (for the re-exec). */
  readonly execArgv: readonly string[];
}

/** The node flags of `--heap-initial-mb`. */
export function heapFlags(cfg: Pick<BackendConfig, 'heapInitialMb'>): string[] {
  return cfg.heapInitialMb > 0 ? [`--initial-old-space-size=${cfg.heapInitialMb}`] : [];
}

export function tuning(cfg: BackendConfig, current: NodeJS.ProcessEnv, execArgv: readonly string[] = process.execArgv): Tuning {
  const env: NodeJS.ProcessEnv = { ...current };
  let reexecNeeded = false;
  const uv = cfg.uvThreadpoolSize ?? (current.UV_THREADPOOL_SIZE ? Number(current.UV_THREADPOOL_SIZE) : cfg.concurrency + 4);
  if (current.UV_THREADPOOL_SIZE !== String(uv)) { env.UV_THREADPOOL_SIZE = String(uv); reexecNeeded = true; }

  let allocator: string;
  const preload = current.LD_PRELOAD ?? '';
  if (/jemalloc/.test(preload)) {
    allocator = 'jemalloc (LD_PRELOAD)';
  } else if (current.MALLOC_ARENA_MAX !== undefined && current.MALLOC_ARENA_MAX !== '') {
    // The operator chose glibc tuning: respect it.
    allocator = `glibc, MALLOC_ARENA_MAX=${current.MALLOC_ARENA_MAX}`;
  } else {
    const jemalloc = process.platform === 'linux' ? findJemalloc(current) : undefined;
    if (jemalloc !== undefined) {
      env.LD_PRELOAD = preload === '' ? jemalloc : `${jemalloc}:${preload}`;
      allocator = `jemalloc (${jemalloc})`;
    } else {
      env.MALLOC_ARENA_MAX = '2';
      allocator = 'glibc, MALLOC_ARENA_MAX=2';
    }
    reexecNeeded = true;
  }
  // An old-space size the operator gave node itself is respected.
  const missing = execArgv.some((a) => a.startsWith('--initial-old-space-size')) ? [] : heapFlags(cfg);
  if (missing.length > 0) reexecNeeded = true;
  return { env, reexecNeeded, allocator, uvThreadpoolSize: uv, execArgv: missing };
}
