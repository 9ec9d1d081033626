import { pino } from 'pino';
import sharp from 'sharp';
import type { BackendConfig } from './config.js';
import type { Tuning } from './tuning.js';
import { createBackend } from './wire.js';

// How long in-flight jobs get to finish on SIGTERM before the process exits anyway.
const DRAIN_MS = 10_000;

/** Runs one backend until SIGINT/SIGTERM (or until the launcher that spawned it dies). */
export async function runBackend(cfg: BackendConfig, tune: Tuning): Promise<void> {
  // Threads per pipeline: with `concurrency` pipelines at once, more would only oversubscribe the cores.
  sharp.concurrency(cfg.sharpConcurrency);
  // The operation cache only helps when the same input is processed again, which an
  // upload API almost never does; it would just hold memory.
  sharp.cache(cfg.sharpCacheMb > 0 ? { memory: cfg.sharpCacheMb, files: 0, items: 100 } : false);
  const log = pino({ level: cfg.logLevel, base: { pid: process.pid, component: 'backend' } });
  const svc = await createBackend(cfg, log);
  const port = await svc.listen(cfg.port, cfg.host);
  log.info({
    port, host: cfg.host, results_dir: svc.store.dir, concurrency: cfg.concurrency, queue: cfg.queue,
    sharp_concurrency: sharp.concurrency(), uv_threadpool_size: tune.uvThreadpoolSize, allocator: tune.allocator,
    face_workers: cfg.faceWorkers,
  }, 'backend listening');

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping');
    svc.server.close();
    svc.server.closeIdleConnections();
    const deadline = Date.now() + DRAIN_MS;
    while (Date.now() < deadline && (svc.pool.load.inflight > 0 || svc.pool.load.queued > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    await svc.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Spawned by the launcher (cli.ts): when it goes away, so do we.
  if (process.channel !== undefined) {
    process.on('disconnect', () => void stop('launcher gone'));
    process.channel.unref();
  }
}
