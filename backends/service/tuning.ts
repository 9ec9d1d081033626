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
}

export function tuning(cfg: BackendConfig, current: NodeJS.ProcessEnv): Tuning {
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
  return { env, reexecNeeded, allocator, uvThreadpoolSize: uv };
}
