import type { FailurePolicy, RouteConfig, SluiceConfig, ZoneKey } from '../config/types.js';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { MemoryStore } from '../store/memory-store.js';
import type { LimitReqCheck, LimitReqResult, Store } from '../store/types.js';

/**
 * Where limit_req runs. nginx runs it in the preaccess phase, before access (auth), so
 * requests count against a zone whether or not their credential is good; `preAuth`
 * does the same for routes whose zones are keyed by the client address or a header.
 * A zone keyed by the customer cannot be decided before auth has said who the customer
 * is, and the zones of one route must be decided together (nginx accounts them only
 * when all pass), so a route with any customer-keyed zone has all its zones decided by
 * `postAuth`, right after auth and before the plan limits.
 */
export interface LimitReqStages {
  readonly preAuth: Stage;
  readonly postAuth: Stage;
}

interface RoutePlan {
  readonly afterAuth: boolean;
  readonly zones: readonly { readonly key: ZoneKey; readonly check: Omit<LimitReqCheck, 'key'> }[];
  readonly status: number;
}

/** nginx skips keys longer than this (with an error in its log) rather than limit them. */
const MAX_KEY_BYTES = 65535;

export function limitReqStages(cfg: SluiceConfig, store: Store, metrics: Metrics, log: { warn(obj: object, msg: string): void }): LimitReqStages {
  const plans = new Map<RouteConfig, RoutePlan>();
  for (const route of cfg.routes) {
    if (route.limit_req.length === 0) continue;
    const zones = route.limit_req.map((rule) => {
      const z = cfg.limit_req_zones.get(rule.zone)!;
      return {
        key: z.key,
        check: { zone: z.name, rateMilli: z.rate_milli, burstMilli: rule.burst * 1000, delayMilli: (rule.nodelay ? rule.burst : rule.delay) * 1000 },
      };
    });
    plans.set(route, { afterAuth: zones.some((z) => z.key.source === 'customer'), zones, status: route.limit_req_status });
  }
  if (cfg.routes.some((r) => r.limit_conn.length > 0)) {
    log.warn({ routes: cfg.routes.filter((r) => r.limit_conn.length > 0).map((r) => r.name) }, 'limit_conn is read and validated but not enforced yet');
  }
  const memory = store instanceof MemoryStore ? store : undefined;
  // Used only when the shared store fails and the policy is open: the same math on this
  // gateway's own state, so limits still hold per gateway instead of vanishing.
  const local = new MemoryStore();
  const failure: FailurePolicy = cfg.store.failure_policy;
  const timeoutMs = cfg.store.timeout_ms;

  const settle = (ctx: RequestContext, plan: RoutePlan, checks: readonly LimitReqCheck[], r: LimitReqResult): boolean | Promise<boolean> => {
    if (!r.passed) {
      const c = checks[r.zone]!;
      ctx.limitResult = 'limit_req_rejected';
      metrics.limitDecision('limit_req_rejected');
      // When this request would have passed, had it come later.
      const retryMs = Math.ceil((r.excess - c.burstMilli) * 1000 / c.rateMilli);
      const excess = `${Math.floor(r.excess / 1000)}.${String(r.excess % 1000).padStart(3, '0')}`;
      return sendError(ctx, plan.status, 'rate_limited', `limiting requests, excess: ${excess} by zone "${c.zone}"`,
        ['retry-after', String(Math.max(1, Math.ceil(retryMs / 1000)))]);
    }
    if (r.delayMs <= 0) return true;
    metrics.limitDecision('limit_req_delayed');
    return holdFor(ctx, r.delayMs);
  };

  const decide = (ctx: RequestContext, plan: RoutePlan): boolean | Promise<boolean> => {
    const checks: LimitReqCheck[] = [];
    for (const z of plan.zones) {
      const value = keyValue(ctx, z.key);
      // nginx: an empty key is not limited by that zone.
      if (value === '' || (value.length > MAX_KEY_BYTES / 3 && Buffer.byteLength(value) > MAX_KEY_BYTES)) continue;
      checks.push({ ...z.check, key: value });
    }
    if (checks.length === 0) return true;
    if (memory !== undefined) return settle(ctx, plan, checks, memory.limitReqSync(checks));
    return withTimeout(store.limitReq(checks), timeoutMs).then(
      (r) => settle(ctx, plan, checks, r),
      (err: unknown) => {
        log.warn({ err: (err as Error).message, request_id: ctx.requestId }, 'limit_req store call failed; following the failure policy');
        if (failure === 'closed') {
          ctx.limitResult = 'store_closed';
          metrics.limitDecision('store_closed');
          return sendError(ctx, 503, 'unavailable', 'rate-limit store unavailable', ['retry-after', '1']);
        }
        metrics.limitDecision('fallback_open');
        return settle(ctx, plan, checks, local.limitReqSync(checks));
      },
    );
  };

  const stage = (afterAuth: boolean): Stage => (ctx) => {
    const plan = plans.get(ctx.route!);
    if (plan === undefined || plan.afterAuth !== afterAuth) return true;
    return decide(ctx, plan);
  };
  return { preAuth: stage(false), postAuth: stage(true) };
}

function keyValue(ctx: RequestContext, key: ZoneKey): string {
  switch (key.source) {
    case 'client': {
      const a = ctx.req.socket.remoteAddress ?? '';
      // nginx's $remote_addr shows an IPv4 client as IPv4 even on a dual-stack socket.
      return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
    }
    // nginx 1.22's $http_<name> is the first of repeated headers, not a joined list.
    case 'header': return ctx.req.headersDistinct[key.header]?.[0] ?? '';
    case 'customer': return ctx.identity?.customer ?? '';
  }
}

/** Holds a request back like nginx's delayed write event: a timer, dropped if the client leaves. */
function holdFor(ctx: RequestContext, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => { clearTimeout(timer); resolve(false); };
    const timer = setTimeout(() => { ctx.res.off('close', onClose); resolve(!ctx.res.destroyed); }, ms);
    ctx.res.once('close', onClose);
  });
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`store answered not within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(t));
}
