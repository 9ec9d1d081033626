import { pino } from 'pino';
import sharp from 'sharp';
import type { Tuning } from './tuning.js';
import { logOptions } from '../../common/log.js';
import { Registration } from '../../common/registry.js';
import type { BackendConfig, RegisterConfig } from './config.js';
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
  const log = pino(logOptions(cfg.logLevel, 'backend'));
  const svc = await createBackend(cfg, log);
  const port = await svc.listen(cfg.port, cfg.host);
  log.info({
    port, host: cfg.host, results: svc.store.location, concurrency: cfg.concurrency, queue: cfg.queue,
    sharp_concurrency: sharp.concurrency(), uv_threadpool_size: tune.uvThreadpoolSize, allocator: tune.allocator, node_flags: process.execArgv.join(' '),
    face_workers: cfg.faceWorkers,
  }, 'backend listening');

  // Not awaited: the signal handlers below must be in place while it registers, so a
  // SIGTERM that arrives meanwhile still deregisters.
  const registration = cfg.register === undefined ? undefined : register(cfg, cfg.register, port, log);

  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping');
    // First, so gateways stop sending new work while the in-flight jobs drain.
    await (await registration)?.deregister().then(() => log.info('deregistered'), (err: Error) => log.warn({ err: err.message }, 'deregistration failed; the registration expires by itself'));
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

/** Registers in the gateways' Redis; a Redis that is down only delays it (the heartbeat keeps trying). */
async function register(cfg: BackendConfig, r: RegisterConfig, port: number, log: pino.Logger): Promise<Registration> {
  const url = r.advertiseUrl ?? `http://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${port}`;
  const reg = new Registration({
    store: r.store, upstream: r.upstream, ttlMs: r.ttlMs,
    member: { url, weight: r.weight, capacity: cfg.concurrency + cfg.queue },
    onTrouble: (err) => (err === undefined
      ? log.info({ upstream: r.upstream, url }, 'registration heartbeat working again')
      : log.warn({ upstream: r.upstream, url, err: err.message }, 'registration heartbeat failing; gateways drop this backend once it expires')),
  });
  await reg.start().then(
    () => log.info({ upstream: r.upstream, url, weight: r.weight, ttl_ms: r.ttlMs }, 'registered in redis'),
    (err: Error) => log.warn({ upstream: r.upstream, url, err: err.message }, 'not registered yet; retrying with every heartbeat'),
  );
  return reg;
}
