import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { createAdminServer } from './admin/admin-server.js';
import { Authenticator } from './auth/authenticator.js';
import { authStage } from './auth/auth-stage.js';
import type { SluiceConfig } from './config/types.js';
import { answerClientError, rawAnswerer } from './http/client-error.js';
import { writeError } from './http/errors.js';
import { requestIdFrom } from './http/request-id.js';
import { checkRequest } from './http/request-check.js';
import { GuardedLimiter } from './limits/guarded-limiter.js';
import { limitReqStages } from './limit-req/limit-req-stage.js';
import { limitsStage } from './limits/limits-stage.js';
import { recordRequest } from './observe/access-log.js';
import { createLogger } from './observe/logger.js';
import { Metrics } from './observe/metrics.js';
import { makeChain } from './pipeline/chain.js';
import { RequestContext } from './pipeline/context.js';
import { proxyStage } from './proxy/proxy-stage.js';
import { routeStage } from './route/route-stage.js';
import { MemoryStore } from './store/memory-store.js';
import { RedisStore } from './store/redis-store.js';
import type { Store } from './store/types.js';
import { balanceStage } from './upstream/balance-stage.js';
import { PoolSet } from './upstream/pool-set.js';

export interface RunningGateway {
  readonly port: number;
  readonly adminPort: number;
  readonly log: Logger;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly log?: Logger;
}

/** Builds the stores, the stage chain and both servers from one validated config. */
export async function startGateway(cfg: SluiceConfig, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const log = opts.log ?? createLogger(cfg.log);
  const metrics = new Metrics(cfg.store.timeout_ms);
  const store: Store = cfg.store.kind === 'redis' ? new RedisStore(cfg.store) : new MemoryStore();
  if (store instanceof RedisStore) {
    await store.ready(2000).catch(() => log.warn({ url: redactUrl(cfg.store.url!) }, 'redis not reachable yet; limits follow the failure policy until it is'));
  }

  const auth = new Authenticator(cfg, store);
  await withTimeout(store.subscribe((msg) => auth.invalidate(msg)), 2000)
    .catch(() => log.warn('cache invalidation channel not subscribed yet; it will be on reconnect'));

  const limiter = new GuardedLimiter(store, cfg.store.timeout_ms, cfg.store.probe_interval_ms, metrics, (open, reason) => {
    if (open) log.error({ reason }, 'store breaker open: limits follow the failure policy');
    else log.info({ reason }, 'store breaker closed: limits enforced by the store again');
  });
  const pools = new PoolSet(cfg.upstreams);
  const longestUpstream = Math.max(0, ...[...cfg.upstreams.values()].map((u) => u.headers_timeout_ms + u.body_timeout_ms));
  const leaseTtlMs = cfg.server.request_timeout_ms + longestUpstream;
  const defaultMaxBody = Math.max(...[...cfg.plans.values()].map((p) => p.max_body_bytes));

  // The request path, top to bottom. Routing comes first because a route decides
  // whether auth applies at all (public result downloads) and which plans may use it.
  const limitReq = limitReqStages(cfg, store, metrics, log);
  const chain = makeChain([
    routeStage(cfg.routes),
    // nginx limit_req (preaccess, before auth); routes keyed by customer are decided after auth.
    limitReq.preAuth,
    authStage(auth, log),
    limitReq.postAuth,
    limitsStage(limiter, metrics, leaseTtlMs),
    balanceStage(pools),
    proxyStage(metrics, { trustForwarded: cfg.server.trust_forwarded, defaultMaxBodyBytes: defaultMaxBody }),
  ], (ctx, err) => {
    log.error({ err: (err as Error).stack, request_id: ctx.requestId }, 'request failed inside the gateway');
    writeError(ctx.res, 500, 'internal_error', 'internal error', ctx.requestId);
  });

  const accessLog = cfg.log.access ? log : undefined;
  const answerRaw = rawAnswerer(accessLog, metrics);
  const finish = (ctx: RequestContext): void => {
    if (ctx.leaseId !== undefined) limiter.release(ctx.identity!.subject, ctx.leaseId, ctx.leaseSource);
    recordRequest(ctx, accessLog, metrics);
  };

  // The response each connection is currently answering, so a late client error (a
  // request timeout while the body still trickles in) never writes into one already started.
  const inFlight = new WeakMap<Socket, ServerResponse>();

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const target = checkRequest(req);
    const ctx = new RequestContext(req, res, requestId, target.ok ? target.path : '(invalid)', performance.now());
    inFlight.set(req.socket, res);
    res.once('close', () => {
      if (inFlight.get(req.socket) === res) inFlight.delete(req.socket);
      finish(ctx);
    });
    if (!target.ok) {
      res.shouldKeepAlive = false;
      ctx.errorCode = 'bad_request';
      ctx.bytesOut = writeError(res, 400, 'bad_request', target.reason, requestId, ['connection', 'close']);
      return;
    }
    chain(ctx);
  };

  // The head is part of the request, so a longer headers timeout could never apply; Node
  // refuses to start with one rather than ignore it.
  const headersTimeout = Math.min(cfg.server.headers_timeout_ms, cfg.server.request_timeout_ms);
  const server = createServer({
    maxHeaderSize: cfg.server.max_header_bytes,
    headersTimeout,
    requestTimeout: cfg.server.request_timeout_ms,
    keepAliveTimeout: cfg.server.keep_alive_timeout_ms,
    // Node checks the two timeouts above on this interval (default 30 s, far too coarse).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
    // Checked in checkRequest instead, so the 400 has the JSON body (Node's has none).
    requireHostHeader: false,
  }, onRequest);
  // Left to itself Node answers "Expect: 100-continue" before any stage has run, inviting
  // bodies that auth or limits then refuse; the proxy stage sends 100 once it forwards one.
  server.on('checkContinue', onRequest);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(answerRaw, err, socket, inFlight.get(socket)));
  // CONNECT (authority-form) never reaches onRequest; without a listener Node just drops the socket.
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => socket.destroy());
    answerRaw(socket, 400, 'Bad Request', 'bad_request', 'CONNECT is not supported: this is a reverse proxy');
  });

  const admin = createAdminServer({
    cfg, store, metrics, log,
    invalidate: (msg) => auth.invalidate(msg),
    storeReady: () => withTimeout(store.ping(), Math.max(200, cfg.store.timeout_ms * 4)),
  });

  const port = await listen(server, cfg.server.host, cfg.server.port);
  const adminPort = await listen(admin, cfg.admin.host, cfg.admin.port);
  log.info({ port, admin_port: adminPort, store: cfg.store.kind }, 'sluice listening');

  return {
    port,
    adminPort,
    log,
    async close() {
      await Promise.all([closeServer(server), closeServer(admin)]);
      await pools.close();
      await store.close();
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
