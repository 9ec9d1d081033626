import cluster, { type Worker } from 'node:cluster';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';

type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
import { json } from '../admin/admin-server.js';
import type { SluiceConfig } from '../config/types.js';
import type { ListenerPort } from '../listen/listeners.js';
import { rereadConfig } from './config-file.js';
import { isMessage, type ToPrimary, type ToWorker } from './messages.js';

// A worker that never says it is ready is killed: a hang guard, so long enough for a start
// on a machine whose cores are all taken (seen: over 20 s at a load average of 35 on 2 cores).
const READY_TIMEOUT_MS = 60_000;
const METRICS_TIMEOUT_MS = 2_000;
// A worker that dies sooner than this after starting counts as a crash loop and backs off.
const STABLE_AFTER_MS = 5_000;
const MAX_BACKOFF_MS = 10_000;

interface Slot {
  readonly worker: Worker;
  readonly startedAt: number;
  adminPort?: number;
  port?: number;
  listeners?: readonly ListenerPort[];
  /** Told to drain (reload or stop): its exit is expected and not replaced. */
  retiring: boolean;
  /**
   * Forked to replace a crashed worker. Such a one is replaced again even when it dies
   * before it is ready (with a growing delay); a worker forked at start or on reload that
   * never gets ready is its caller's failure to report instead.
   */
  readonly replacing: boolean;
}

export interface Primary {
  readonly port: number;
  readonly adminPort: number;
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The cluster primary: it serves no public traffic. It forks the workers (which share the
 * public port through it), replaces crashed ones with a backoff, replaces them one at a
 * time on reload, and serves the admin port: /metrics aggregated over every worker,
 * /healthz itself, everything else proxied to a worker (whose admin server is private).
 */
export async function startPrimary(file: string, text: string, cfg: SluiceConfig, workers: number, log: Logger): Promise<Primary> {
  // The kernel hands connections out, not the primary. Under Node's round-robin the primary
  // accepts and passes each socket to a worker; a worker that dies with one in hand leaves
  // it open in the primary forever, and that client hangs (seen here: kill -9 of a worker
  // under load stranded a request for as long as the test waited). With a shared listening
  // socket, a connection nobody accepted stays queued for the workers that are left. The
  // price is a less even spread of connections (docs/operations.md); an operator who
  // prefers round-robin says so with Node's own NODE_CLUSTER_SCHED_POLICY=rr.
  if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: process.argv[1], args: [], silent: false });
  const slots = new Map<number, Slot>();
  let current = { text, cfg };
  let stopping = false;
  let quickCrashes = 0;
  let nextAdmin = 0;

  const own = new Registry();
  const restarts = new Counter({ name: 'sluice_worker_restarts_total', help: 'Workers replaced after exiting unexpectedly.', registers: [own] });
  new Gauge({
    name: 'sluice_workers', help: 'Workers serving traffic (ready, not draining).', registers: [own],
    collect() { this.set(serving().length); },
  });

  const serving = (): Slot[] => [...slots.values()].filter((s) => s.adminPort !== undefined && !s.retiring);

  const fork = (conf: { text: string }, replacing = false): Promise<Slot> => {
    const worker = cluster.fork();
    const slot: Slot = { worker, startedAt: Date.now(), retiring: false, replacing };
    slots.set(worker.id, slot);
    worker.on('exit', (code, signal) => onExit(slot, code, signal));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { worker.process.kill('SIGKILL'); reject(new Error(`worker ${worker.process.pid} not ready within ${READY_TIMEOUT_MS} ms`)); }, READY_TIMEOUT_MS);
      worker.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`worker ${worker.process.pid} exited before it was ready (code ${code}, signal ${signal})`)); });
      worker.on('message', (m: unknown) => {
        if (isMessage<Extract<ToPrimary, { type: 'sluice:want-config' }>>(m, 'sluice:want-config')) {
          worker.send({ type: 'sluice:config', text: conf.text } satisfies ToWorker);
        }
        if (!isMessage<Extract<ToPrimary, { type: 'sluice:ready' }>>(m, 'sluice:ready')) return;
        clearTimeout(timer);
        slot.port = m.port;
        slot.listeners = m.listeners;
        slot.adminPort = m.adminPort;
        log.info({ worker_pid: worker.process.pid, worker: worker.id }, 'worker ready');
        resolve(slot);
      });
    });
  };

  const onExit = (slot: Slot, code: number | null, signal: string | null): void => {
    slots.delete(slot.worker.id);
    if (stopping || slot.retiring || (slot.adminPort === undefined && !slot.replacing)) return;
    const lived = Date.now() - slot.startedAt;
    quickCrashes = lived < STABLE_AFTER_MS ? quickCrashes + 1 : 0;
    const delay = quickCrashes === 0 ? 0 : Math.min(MAX_BACKOFF_MS, 100 * 2 ** (quickCrashes - 1));
    restarts.inc();
    log.error({ worker_pid: slot.worker.process.pid, code, signal, lived_ms: lived, restart_in_ms: delay }, 'worker exited; replacing it');
    setTimeout(() => {
      if (stopping) return;
      fork(current, true).catch((err: unknown) => log.error({ err: (err as Error).message }, 'replacement worker failed'));
    }, delay).unref();
  };

  const retire = (slot: Slot, idleGraceMs: number): void => {
    slot.retiring = true;
    slot.worker.send({ type: 'sluice:drain', idleGraceMs } satisfies ToWorker);
  };

  let port: number;
  let listeners: readonly ListenerPort[];
  try {
    const first = (await Promise.all(Array.from({ length: workers }, () => fork(current))))[0]!;
    port = first.port!;
    listeners = first.listeners!;
  } catch (err) {
    stopping = true;
    for (const s of slots.values()) s.worker.process.kill('SIGKILL');
    throw err;
  }

  const admin = createServer((req, res) => {
    handleAdmin(req, res).catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'admin request failed in the primary');
      if (!res.headersSent) json(res, 500, { error: { code: 'internal_error', message: 'admin request failed' } });
      else res.destroy();
    });
  });
  const handleAdmin = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://admin').pathname;
    if (req.method === 'GET' && path === '/metrics') {
      const all = await Promise.all(serving().concat([...slots.values()].filter((s) => s.retiring)).map(workerMetrics));
      const merged = AggregatorRegistry.aggregate(all.filter((m): m is WorkerMetrics => m !== undefined));
      const body = `${await merged.metrics()}\n${await own.metrics()}`;
      res.writeHead(200, { 'content-type': merged.contentType });
      res.end(body);
      return;
    }
    const up = serving();
    if (req.method === 'GET' && path === '/healthz') {
      json(res, up.length > 0 ? 200 : 503, { status: up.length > 0 ? 'ok' : 'no_workers', workers: up.length });
      return;
    }
    if (up.length === 0) return json(res, 503, { error: { code: 'unavailable', message: 'no worker is ready' } });
    proxyTo(up[nextAdmin++ % up.length]!.adminPort!, req, res);
  };

  let metricsId = 0;
  const workerMetrics = (slot: Slot): Promise<WorkerMetrics | undefined> => new Promise((resolve) => {
    const id = ++metricsId;
    const onMessage = (m: unknown): void => {
      if (!isMessage<Extract<ToPrimary, { type: 'sluice:metrics' }>>(m, 'sluice:metrics') || m.id !== id) return;
      done(m.metrics as WorkerMetrics);
    };
    // A worker that exits or stalls mid-scrape leaves its share out rather than failing the scrape.
    const timer = setTimeout(() => done(undefined), METRICS_TIMEOUT_MS);
    const done = (v: WorkerMetrics | undefined): void => { clearTimeout(timer); slot.worker.off('message', onMessage); resolve(v); };
    slot.worker.on('message', onMessage);
    try { slot.worker.send({ type: 'sluice:metrics', id } satisfies ToWorker); } catch { done(undefined); }
  });

  const adminPort = await new Promise<number>((resolve, reject) => {
    admin.once('error', reject);
    admin.listen(cfg.admin.port, cfg.admin.host, () => resolve((admin.address() as AddressInfo).port));
  });
  log.info({ port, listeners, admin_port: adminPort, store: cfg.store.kind, workers }, 'sluice listening');

  let reloading: Promise<void> | undefined;
  let again = false;
  const rollingReload = async (): Promise<void> => {
    const next = rereadConfig(file, log, workers);
    if (next === undefined) return;
    const old = [...slots.values()].filter((s) => !s.retiring);
    log.info({ workers: old.length }, 'reload: replacing workers one at a time');
    for (const slot of old) {
      if (stopping) return;
      try {
        await fork(next);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'reload aborted: a new worker failed to start; the others keep the running config');
        return;
      }
      // The new worker already accepts on the shared port, so the old one can stop accepting.
      if (slot.worker.isConnected()) retire(slot, Math.min(1000, current.cfg.server.keep_alive_timeout_ms));
    }
    current = next;
    log.info({ workers: serving().length }, 'reload done');
  };

  return {
    port,
    adminPort,
    async reload() {
      // SIGHUPs during a reload collapse into one more pass once it is done.
      if (reloading !== undefined) { again = true; return reloading; }
      reloading = (async () => {
        do { again = false; await rollingReload(); } while (again && !stopping);
      })().finally(() => { reloading = undefined; });
      return reloading;
    },
    async stop() {
      stopping = true;
      admin.close();
      admin.closeAllConnections();
      const alive = [...slots.values()];
      const exited = Promise.all(alive.map((s) => new Promise<void>((resolve) => {
        if (s.worker.isDead()) return resolve();
        s.worker.once('exit', () => resolve());
      })));
      for (const s of alive) if (s.worker.isConnected()) retire(s, 0);
      // Past the workers' own drain deadline something is stuck: end it.
      const kill = setTimeout(() => { for (const s of alive) s.worker.process.kill('SIGKILL'); }, current.cfg.server.drain_timeout_ms + 5000);
      await exited;
      clearTimeout(kill);
    },
  };
}

function proxyTo(port: number, req: IncomingMessage, res: ServerResponse): void {
  // The worker's admin throttle counts wrong tokens per client: it is told the client's address (the client's own header is replaced).
  const peer = req.socket.remoteAddress ?? '';
  const headers = { ...req.headers, 'x-forwarded-for': peer.startsWith('::ffff:') ? peer.slice(7) : peer };
  const up = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) json(res, 502, { error: { code: 'bad_gateway', message: 'the worker did not answer' } });
    else res.destroy();
  });
  req.pipe(up);
}

