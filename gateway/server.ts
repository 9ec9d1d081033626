import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAuditLog, RedisAuditLog, type AuditLog } from '../common/admin/audit-log.js';
import { masterKeysFromEnv, type MasterKeys } from '../common/webhook-keys/master-key.js';
import { WebhookKeyring } from '../common/webhook-keys/keyring.js';
import { DirKeyringStorage, RedisKeyringStorage, type KeyringStorage } from '../common/webhook-keys/storage.js';
import { createAdminServer } from './admin/admin-server.js';
import { LastUsed } from './auth/last-used.js';
import { webhookKeyStage } from './webhook-keys/webhook-key-stage.js';
import { openApiStage } from './contract/openapi-stage.js';
import { Authenticator } from './auth/authenticator.js';
import { accountStage } from './account/account-stage.js';
import { CreditMetrics } from './credits/credit-metrics.js';
import { Credits } from './credits/credits.js';
import { idempotencyStage } from './credits/idempotency.js';
import { DenyCache } from './limits/deny-cache.js';
import { authStage } from './auth/auth-stage.js';
import type { SluiceConfig } from './config/types.js';
import { answerClientError, rawAnswerer } from './http/client-error.js';
import { watchBodyRate, type BodyRate } from '../common/body-rate.js';
import { bodyPending } from '../common/request-body.js';
import { sendError, writeError } from './http/errors.js';
import type { GatewayResponse } from './http/gateway-response.js';
import { requestIdFrom } from '../common/request-id.js';
import { checkRequest } from './http/request-check.js';
import { withDeadline } from '../common/deadline.js';
import { StoreGuard } from './guard/store-guard.js';
import { GuardedLimiter } from './limits/guarded-limiter.js';
import { limitConnStages } from './limit-req/limit-conn-stage.js';
import { limitReqStages } from './limit-req/limit-req-stage.js';
import { zoneLimiterDeps } from './limit-req/zone-stage.js';
import { Drain } from './http/drain.js';
import { limitsStage } from './limits/limits-stage.js';
import { recordRequest } from './observe/access-log.js';
import { createLogger } from './observe/logger.js';
import { Metrics } from './observe/metrics.js';
import { makeChain } from './pipeline/chain.js';
import { RequestContext } from './pipeline/context.js';
import { proxyStage } from './proxy/proxy-stage.js';
import { UpgradeContext, upgradeResponse, upgradeRoutes } from './proxy/upgrade.js';
import { accessStage } from './route/access.js';
import { returnStage } from './route/local-answer.js';
import { routeStage } from './route/route-stage.js';
import { clientAddressResolver } from './http/real-ip.js';
import { loadShedder } from './shed/shed-stage.js';
import { MemoryStore } from './store/memory-store.js';
import { logConnection } from './store/connection-log.js';
import { RedisStore } from './store/redis-store.js';
import { describeStore } from '../common/redis-client.js';
import type { Invalidation, Store } from './store/types.js';
import { balanceStage } from './upstream/balance-stage.js';
import { Discovery } from './upstream/discovery.js';
import { PoolSet } from './upstream/pool-set.js';
import { Listeners, restartOnlyListeners, type ListenerPort } from './listen/listeners.js';

export interface RunningGateway {
  /** The first listener's port. */
  readonly port: number;
  readonly listeners: readonly ListenerPort[];
  readonly adminPort: number;
  readonly log: Logger;
  /** This process's metrics; a cluster primary aggregates them across workers. */
  readonly registry: Registry;
  /**
   * Builds a new request path from cfg and sends new requests to it; requests already in
   * flight finish on the old one, whose pools (and store, when the store section changed)
   * close after them. Resolves with the changes only a restart applies.
   */
  reload(cfg: SluiceConfig): Promise<string[]>;
  /**
   * Stops accepting, lets in-flight requests finish within drainMs (default
   * server.drain_timeout_ms), then closes pools and store. idleGraceMs: see Drain.
   */
  close(drainMs?: number, idleGraceMs?: number): Promise<void>;
}

export interface GatewayOptions {
  readonly log?: Logger;
  /**
   * A cluster worker: the public listener is shared through the primary, and the admin
   * server binds a private loopback port of its own, which the primary proxies to.
   */
  readonly worker?: boolean;
}

/** Everything built from one config that a reload replaces. */
interface Generation {
  readonly cfg: SluiceConfig;
  readonly store: Store;
  readonly guard: StoreGuard;
  readonly opened: OpenedStore;
  readonly audit: AuditLog;
  readonly webhookKeys: WebhookKeyring | undefined;
  /** head: the bytes after an Upgrade request's head (the request is then a tunnel candidate). */
  readonly onRequest: (req: IncomingMessage, res: ServerResponse, listener: string, head?: Buffer) => void;
  readonly shouldUpgrade: (req: IncomingMessage) => boolean;
  readonly answerRaw: ReturnType<typeof rawAnswerer>;
  readonly invalidate: (msg: Invalidation) => void;
  /** Closes the pools (and the store when told) once this generation's requests are done, or after maxWaitMs. */
  retire(maxWaitMs: number, closeStore: boolean): Promise<void>;
}

/** Builds the stores, the stage chain and both servers from one validated config. */
export async function startGateway(cfg: SluiceConfig, opts: GatewayOptions = {}): Promise<RunningGateway> {
  const log = opts.log ?? createLogger(cfg.log);
  // Read once: a malformed key stops the start here, naming the variable (never the key).
  const master = masterKeysFromEnv(process.env);
  if (master === undefined) log.warn('SLUICE_MASTER_KEY is not set: GET /v1/webhooks/key and deliveries signed with customers\' keys answer 503 until it is');
  const metrics = new Metrics(cfg.store.timeout_ms, cfg.store.late_grace_ms);
  const creditMetrics = new CreditMetrics(metrics);
  const drain = new Drain();
  // One subscription per store (a Redis one is a connection), delivered to whichever
  // generation is current.
  // A Redis subscriber reports "reconnected" before the first generation exists: nothing is cached yet then.
  const onInvalidation = (msg: Invalidation): void => (built ? gen.invalidate(msg) : undefined);
  let built = false;
  let gen: Generation = await buildGeneration(cfg, log, metrics, creditMetrics, drain, await openStore(cfg, log, metrics, onInvalidation, master));
  built = true;

  const listeners = await Listeners.start(cfg, {
    request: (req, res, listener) => gen.onRequest(req, res, listener),
    upgrade: (req, socket, head, listener) => gen.onRequest(req, upgradeResponse(req, socket), listener, head),
    shouldUpgrade: (req) => gen.shouldUpgrade(req),
    clientError: (err, socket) => answerClientError(gen.answerRaw, err, socket, drain.on(socket)),
    tlsError: (err, listener) => metrics.tlsHandshakeErrors.inc({ listener, reason: err.code ?? 'unknown' }),
    connect(_req, socket) {
      socket.on('error', () => socket.destroy());
      gen.answerRaw(socket, 400, 'Bad Request', 'bad_request', 'CONNECT is not supported: this is a reverse proxy');
    },
  });
  const servers = listeners.bound.map((l) => l.server);
  const admin = createAdminServer({
    get cfg() { return gen.cfg; },
    get store() { return gen.store; },
    get audit() { return gen.audit; },
    get webhookKeys() { return gen.webhookKeys; },
    metrics, log,
    invalidate: (msg) => gen.invalidate(msg),
    storeReady: () => withDeadline(gen.store.ping(), Math.max(200, gen.cfg.store.timeout_ms * 4), 'store ping'),
  }, { behindPrimary: opts.worker === true });

  const bound = listeners.bound.map(({ name, port, tls }) => ({ name, port, tls }));
  const port = bound[0]!.port;
  const adminPort = opts.worker === true ? await listen(admin, '127.0.0.1', 0, true) : await listen(admin, cfg.admin.host, cfg.admin.port);
  // In a cluster only the primary announces the stack; the harness and operators read that line.
  log.info({ port, listeners: bound, admin_port: adminPort, store: cfg.store.kind }, opts.worker === true ? 'worker listening' : 'sluice listening');

  return {
    port,
    listeners: bound,
    adminPort,
    log,
    registry: metrics.registry,
    async reload(next) {
      const old = gen;
      // By value, not by text: the checked config keeps the file's field order.
      const sameStore = isDeepStrictEqual(next.store, old.cfg.store);
      const opened = sameStore ? old.opened : await openStore(next, log, metrics, onInvalidation, master);
      gen = await buildGeneration(next, log, metrics, creditMetrics, drain, opened);
      listeners.reloadTls(next);
      log.level = next.log.level;
      void old.retire(next.server.drain_timeout_ms, !sameStore);
      return restartOnly(old.cfg, next);
    },
    async close(drainMs = gen.cfg.server.drain_timeout_ms, idleGraceMs = 0) {
      const [cuts] = await Promise.all([Promise.all(servers.map((s) => drain.close(s, drainMs, idleGraceMs))), closeServer(admin)]);
      // Each server's count is of every request still open, so the largest is the total.
      const cut = Math.max(...cuts);
      if (cut > 0) log.warn({ cut, drain_timeout_ms: drainMs }, 'drain deadline passed: requests cut');
      await gen.retire(0, true);
    },
  };
}

/** A store and the guard in front of it: a reload that keeps the store keeps its breaker and fleet count too. */
interface OpenedStore {
  readonly store: Store;
  readonly guard: StoreGuard;
  /** Kept beside the limits: in Redis for a fleet, in this process for the memory store. */
  readonly audit: AuditLog;
  /** Undefined without a master key. */
  readonly webhookKeys: WebhookKeyring | undefined;
}

/**
 * Where webhook keys live: in Redis beside the limits, or for the memory store in a
 * directory the backends this stack started share (SLUICE_WEBHOOK_KEYS_DIR, set by `sluice`).
 */
function keyringStorage(cfg: SluiceConfig, store: Store, log: Logger): KeyringStorage {
  if (store instanceof RedisStore) return new RedisKeyringStorage(store.client, cfg.store.prefix);
  let dir = cfg.webhooks.keys_dir ?? process.env.SLUICE_WEBHOOK_KEYS_DIR;
  if (dir === undefined) {
    dir = mkdtempSync(join(tmpdir(), 'sluice-webhook-keys-'));
    log.info({ dir }, 'webhook keys kept in a directory of this process only (no backend shares it)');
  }
  return new DirKeyringStorage(dir);
}

async function openStore(cfg: SluiceConfig, log: Logger, metrics: Metrics, onInvalidation: (msg: Invalidation) => void, master: MasterKeys | undefined): Promise<OpenedStore> {
  const store: Store = cfg.store.kind === 'redis' ? new RedisStore(cfg.store) : new MemoryStore();
  const retentionMs = cfg.admin.audit_retention_days * 86_400_000;
  const audit = store instanceof RedisStore ? new RedisAuditLog(store.client, `${cfg.store.prefix}audit`, retentionMs) : new MemoryAuditLog(retentionMs);
  const webhookKeys = master === undefined ? undefined : new WebhookKeyring(keyringStorage(cfg, store, log), master);
  if (store instanceof RedisStore) {
    logConnection(store.client, log, describeStore(cfg.store), () => store.closing);
    await store.ready(2000).catch(() => log.warn({ store: describeStore(cfg.store) }, 'redis not reachable yet; limits follow the failure policy until it is'));
  }
  await withDeadline(store.subscribe(onInvalidation), 2000, 'subscribe')
    .catch(() => log.warn('cache invalidation channel not subscribed yet; it will be on reconnect'));
  const guard = new StoreGuard(cfg.store, store, metrics, log);
  // Registered in the fleet before listening, so peers count this gateway from its first request.
  await guard.start();
  return { store, guard, audit, webhookKeys };
}

async function buildGeneration(
  cfg: SluiceConfig, log: Logger, metrics: Metrics, creditMetrics: CreditMetrics, drain: Drain, opened: OpenedStore,
): Promise<Generation> {
  const { store, guard } = opened;
  const auth = new Authenticator(cfg, store);
  const lastUsed = new LastUsed(store, cfg.auth.last_used_flush_ms, (err) => log.warn({ err: err.message }, 'last-used times not written; kept for the next batch'));
  const limiter = new GuardedLimiter(store, guard, metrics, cfg.store.lease);
  const pools = new PoolSet(cfg.upstreams, { metrics, log });
  const discovered = [...cfg.upstreams.values()].filter((u) => u.discover !== undefined);
  // The config refuses discover without a redis store, so url is there.
  const discovery = discovered.length === 0 ? undefined : new Discovery(cfg.store, discovered, pools, log);
  await discovery?.ready(1000);
  const longestUpstream = Math.max(0, ...[...cfg.upstreams.values()].map((u) => u.headers_timeout_ms + u.body_timeout_ms));
  const leaseTtlMs = cfg.server.request_timeout_ms + longestUpstream;
  const defaultMaxBody = Math.max(...[...cfg.plans.values()].map((p) => p.max_body_bytes));

  // The request path, top to bottom. Routing comes first because a route decides
  // whether auth applies at all (public result downloads) and which plans may use it.
  const zoneDeps = zoneLimiterDeps(cfg, store, guard, metrics, log);
  const limitReq = limitReqStages(cfg, zoneDeps);
  const limitConn = limitConnStages(cfg, zoneDeps, leaseTtlMs);
  const shed = loadShedder(cfg, metrics, log, () => open);
  const credits = new Credits(cfg, store, creditMetrics, log);
  const denials = new DenyCache();
  const stages = [
    // The public contract is open to all, whatever the routes say.
    openApiStage(),
    routeStage(cfg),
    // A route's own answers, before limits and auth: allow/deny (a refused probe costs no
    // store call), then a local answer (return).
    accessStage(),
    returnStage(),
    // nginx limit_req then limit_conn (its preaccess order, before auth); routes with a
    // customer-keyed zone are decided after auth.
    limitReq.preAuth,
    limitConn.preAuth,
    authStage(auth, lastUsed, log),
    // Priority comes from the plan auth found; every stage below may call the store, which a shed request skips.
    shed.stage,
    limitReq.postAuth,
    limitConn.postAuth,
    // A repeated Idempotency-Key is answered from the kept response here, before the limits: it is not charged again.
    idempotencyStage(credits.keeper, cfg.billing.idempotency, leaseTtlMs, creditMetrics),
    limitsStage(limiter, metrics, leaseTtlMs, denials, credits.warnings),
    // Answered by the gateway itself, after the limits: reading the account is a call like any other.
    accountStage(store, cfg.store.timeout_ms, cfg.billing.usage.retention_days),
    webhookKeyStage(opened.webhookKeys, cfg.webhooks.rotation_overlap_s, cfg.store.timeout_ms, log),
    balanceStage(pools, metrics),
  ];
  const onError = (ctx: RequestContext, err: unknown): void => {
    log.error({ err: (err as Error).stack, request_id: ctx.requestId }, 'request failed inside the gateway');
    writeError(ctx.res, 500, 'internal_error', 'internal error', ctx.requestId);
  };
  const proxy = proxyStage(metrics, { defaultMaxBodyBytes: defaultMaxBody, pools, onResponseHead: credits.atResponseHead });
  const chain = makeChain([...stages, proxy], onError);
  // An Upgrade request runs the same stages (it counts as a request); its last step makes the tunnel.
  const upgrades = upgradeRoutes(cfg, metrics, proxy);
  const upgradeChain = makeChain([...stages, upgrades.stage], onError);

  const accessLog = cfg.log.access ? log : undefined;
  const answerRaw = rawAnswerer(accessLog, metrics);
  // The one end-of-request hook, shared by every request of this generation (its `this`
  // is the response): whatever a request holds is given back here, and nowhere else.
  const ended = function (this: GatewayResponse): void {
    const ctx = this.ctx!;
    drain.untrack(this.slot);
    // The client left before its answer was complete: stop the upstream attempt too.
    if (!this.writableFinished) ctx.upstream?.cancel();
    if (ctx.leaseId !== undefined) limiter.release(ctx.identity!.subject, ctx.leaseId, ctx.leaseSource);
    credits.finish(ctx);
    recordRequest(ctx, accessLog, metrics);
    if (--open === 0) idle?.();
  };

  const bodyRate: BodyRate = { bytesPerSecond: cfg.server.min_body_rate, windowMs: cfg.server.body_rate_window_ms };
  const slowBody = (ctx: RequestContext, got: number, ms: number): void => {
    // The upstream may have answered first (its own body-rate window closed sooner): then
    // its answer is what the client has, and the connection is only cut.
    const answered = ctx.res.headersSent;
    log.warn({ request_id: ctx.requestId, bytes: got, ms: Math.round(ms), min_body_rate: bodyRate.bytesPerSecond },
      answered ? 'request body too slow: connection cut after the upstream answered' : 'request body too slow: cut with 408');
    if (answered) ctx.res.destroy();
    else sendError(ctx, 408, 'request_timeout', `request body arrived at ${Math.floor(got * 1000 / ms)} bytes/s, under server.min_body_rate (${bodyRate.bytesPerSecond})`);
    // After the answer, so the aborted attempt finds the client answered and adds nothing.
    ctx.upstream?.cancel();
  };

  const clientAddress = clientAddressResolver(cfg.server);
  const onRequest = (req: IncomingMessage, response: ServerResponse, listener: string, head?: Buffer): void => {
    open++;
    const res = response as GatewayResponse;
    const requestId = requestIdFrom(req.headers['x-request-id']);
    const target = checkRequest(req);
    const path = target.ok ? target.path : '(invalid)';
    const ctx = head === undefined
      ? new RequestContext(req, res, requestId, path, performance.now())
      : new UpgradeContext(req, res, requestId, path, performance.now(), head);
    ctx.listener = listener;
    clientAddress(ctx);
    if (target.ok) {
      ctx.uri = target.uri;
      ctx.query = target.query;
      ctx.forwardPath = target.forward;
    }
    res.ctx = ctx;
    res.slot = drain.track(res);
    res.on('close', ended);
    // Only a body still to come can be slow; the rest cost no closure.
    if (bodyPending(req)) watchBodyRate(req, bodyRate, (got, ms) => slowBody(ctx, got, ms));
    if (!target.ok) {
      res.shouldKeepAlive = false;
      const [status, code] = 'status' in target ? [target.status, 'expectation_failed' as const] : [400, 'bad_request' as const];
      ctx.errorCode = code;
      ctx.bytesOut = writeError(res, status, code, target.reason, requestId, ['connection', 'close']);
      return;
    }
    (head === undefined ? chain : upgradeChain)(ctx);
  };

  let open = 0;
  let idle: (() => void) | undefined;
  return {
    cfg, store, guard, opened, audit: opened.audit, webhookKeys: opened.webhookKeys, onRequest, answerRaw,
    shouldUpgrade: upgrades.accepts,
    invalidate: (msg) => {
      if (msg.kind === 'denial') { denials.invalidate(msg.subject); return; }
      // A reconnected channel may have missed denial invalidations too.
      if (msg.kind === 'customer' && msg.id === '*') denials.clear();
      auth.invalidate(msg);
    },
    async retire(maxWaitMs, closeStore) {
      if (open > 0) {
        let t: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => { idle = resolve; t = setTimeout(resolve, maxWaitMs); });
        clearTimeout(t);
      }
      discovery?.close();
      shed.stop();
      limiter.stop();
      await lastUsed.stop();
      await credits.stop();
      await pools.close();
      if (closeStore) {
        guard.stop();
        await store.close();
      }
    },
  };
}

/** What a reload cannot change in a running process: listeners and the processes it spawned. */
function restartOnly(a: SluiceConfig, b: SluiceConfig): string[] {
  const out = restartOnlyListeners(a.listeners, b.listeners);
  for (const k of ['max_header_bytes', 'headers_timeout_ms', 'request_timeout_ms', 'keep_alive_timeout_ms'] as const) {
    if (a.server[k] !== b.server[k]) out.push(`server.${k}`);
  }
  if (a.admin.host !== b.admin.host || a.admin.port !== b.admin.port) out.push('admin.host/port');
  if (JSON.stringify(a.spawn_backends) !== JSON.stringify(b.spawn_backends)) out.push('spawn_backends');
  // The admin throttle outlives reloads (a reload must not forgive a flood); the audit log
  // and the webhook key directory are opened with the store, kept while it is.
  if (JSON.stringify(a.admin.auth_failures) !== JSON.stringify(b.admin.auth_failures)) out.push('admin.auth_failures');
  if (a.admin.audit_retention_days !== b.admin.audit_retention_days) out.push('admin.audit_retention_days');
  if (a.webhooks.keys_dir !== b.webhooks.keys_dir) out.push('webhooks.keys_dir');
  return out;
}

function listen(server: Server, host: string, port: number, exclusive = false): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, exclusive }, () => {
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
