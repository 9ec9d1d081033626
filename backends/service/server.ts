import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { DEFAULT_BODY_RATE } from '../../common/body-rate.js';
import { HttpError, errorBody } from '../../common/errors.js';
import { requestIdFrom as requestId } from '../../common/request-id.js';
import type { Exchange, Route, ServiceContext, ServiceDeps, ServiceOptions, Ticket } from './context.js';
import { BackendMetrics } from './metrics.js';
import { Pool } from './pool.js';
import { fail, overloaded } from './respond.js';
import { DirectoryResultsStore, type ResultsStore } from './results-store.js';
import { routeFor } from './routes.js';
import { WatermarkStore } from './watermarks-store.js';

/**
 * The image service's HTTP layer: a table of routes (routes.ts), one handler per
 * endpoint (routes/). Everything that touches pixels or the network is injected
 * (ServiceDeps). A request's path here: route, method, admission (pool), handler.
 */
export interface ImageService {
  readonly server: Server;
  readonly pool: Pool;
  readonly store: ResultsStore;
  readonly watermarks: WatermarkStore;
  readonly metrics: BackendMetrics;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
}

const OPENAPI_DEFAULT = new URL('../../../backends/service/openapi.json', import.meta.url);

async function openResultsStore(opts: ServiceOptions, onSwept: (removed: number) => void): Promise<ResultsStore> {
  const common = { ttlSeconds: opts.resultTtlSeconds, sweepIntervalMs: opts.sweepIntervalMs, onSwept };
  if (opts.resultsS3 === undefined) return DirectoryResultsStore.open({ dir: opts.resultsDir, ...common });
  // Loaded only when used: the AWS SDK is large.
  const { S3ResultsStore } = await import('./results-s3-store.js');
  return new S3ResultsStore({ s3: opts.resultsS3, ...common });
}

/** Method, then admission before the body (a full backend answers without reading a byte), then the handler. */
async function dispatch(ctx: ServiceContext, ex: Exchange, route: Route | undefined): Promise<void> {
  const method = ex.req.method ?? 'GET';
  if (route === undefined) throw new HttpError(404, 'not_found', `no route for ${method} ${ex.path}`);
  if (!route.methods.split(', ').includes(method)) throw new HttpError(405, 'method_not_allowed', `use ${route.methods}`, undefined, { allow: route.methods });
  if (!route.admit) return route.handle(ctx, ex);
  const slot = ctx.pool.reserve();
  if (slot === undefined) { ctx.metrics.rejected.inc(); throw overloaded(ctx); }
  const ticket: Ticket = { slot, detached: false };
  // A client that leaves while queued gives its place back at once.
  ex.res.once('close', () => { if (!ticket.detached) slot.release(); });
  try {
    await route.handle(ctx, ex, ticket);
  } finally {
    if (!ticket.detached) slot.release();
  }
}

export async function createImageService(deps: ServiceDeps, opts: ServiceOptions): Promise<ImageService> {
  const log = deps.log ?? pino({ level: 'silent' });
  const pool = new Pool({ concurrency: opts.concurrency, queue: opts.queue });
  const metrics = new BackendMetrics(() => pool.load);
  const store = await openResultsStore(opts, (removed) => {
    metrics.lastSweep.set(Date.now() / 1000);
    if (removed === 0) return;
    metrics.resultsExpired.inc(removed);
    // Counts only: an id is a capability to a customer's image, and the GDPR log needs none.
    log.info({ removed, store: store.location }, 'expired results deleted');
  });
  let watermarks: WatermarkStore;
  try {
    watermarks = await WatermarkStore.open(opts.watermarksDir, opts.watermarkLimits);
  } catch (err) {
    await store.close();
    throw err;
  }
  metrics.watchResults(() => store.audit());
  const openapi = readFileSync(opts.openapiPath ?? OPENAPI_DEFAULT);
  // Fail at start, not on the first request, if the document in the repo is broken.
  JSON.parse(openapi.toString('utf8'));
  const limits = opts.limits;
  const ctx: ServiceContext = {
    deps, log, pool, metrics, store, watermarks, limits, openapi,
    bodyRate: opts.bodyRate ?? DEFAULT_BODY_RATE,
    retryAfter: String(opts.retryAfterSeconds),
    sending: new Set<Promise<void>>(),
  };

  const server = createServer(onRequest);
  // Taking over `Expect: 100-continue` (Node would otherwise invite every body at once)
  // lets a full backend refuse before the client uploads anything.
  server.on('checkContinue', onRequest);
  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const rid = requestId(req.headers['x-request-id']);
    res.setHeader('x-request-id', rid);
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const route = routeFor(path);
    const ex: Exchange = { req, res, rid, path };
    res.once('finish', () => metrics.requestDone(route?.endpoint ?? 'other', res.statusCode, (performance.now() - started) / 1000));
    dispatch(ctx, ex, route).catch((err: unknown) => fail(ctx, ex, err, 'internal'));
  }
  // The gateway keeps connections to its backends open; outlive its idle timeout.
  server.keepAliveTimeout = 60_000;
  server.headersTimeout = 30_000;
  // Bounds a slow upload (which holds a place in the queue) without cutting off large ones.
  server.requestTimeout = Math.max(60_000, limits.timeoutMs * 2);
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
    const body = errorBody(new HttpError(400, 'bad_request', 'malformed HTTP request'), requestId(undefined));
    socket.end(`HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });

  let closing: Promise<void> | undefined;
  return {
    server,
    pool,
    store,
    watermarks,
    metrics,
    listen(port, host) {
      return new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // In-flight requests get no grace here; the CLI drains before calling close.
          server.closeAllConnections();
        });
        // A job that finished its processing may still be storing its result: its webhook
        // must be handed to the sender (or queue) before that closes.
        await Promise.all([...ctx.sending]);
        await deps.webhooks?.close();
        await store.close();
        await watermarks.close();
      })();
      return closing;
    },
  };
}
