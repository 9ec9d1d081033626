import type { RouteConfig, SluiceConfig } from '../config/types.js';
import { everyRoute } from '../route/resolve.js';
import { sendError } from '../http/errors.js';
import { sharePart } from '../limits/guarded-limiter.js';
import { leaseIds } from '../limits/limits-stage.js';
import type { RequestContext } from '../pipeline/context.js';
import type { LimitConnCheck, LimitConnResult, Store } from '../store/types.js';
import { decideWithStore, phaseStages, zoneChecks, type PhaseStages, type ZoneLimiterDeps, type ZoneRule } from './zone-stage.js';

interface RoutePlan {
  readonly zones: readonly ZoneRule<LimitConnCheck>[];
  readonly status: number;
}

/** nginx keeps a limit_conn key's length in one byte and skips longer keys (with an error in its log). */
const MAX_KEY_BYTES = 255;

/**
 * nginx `limit_conn` (placement: see PhaseStages in zone-stage.ts; on one route it runs
 * after limit_req, as nginx's preaccess handlers do, so a delayed request takes its slot
 * only once its delay is over). A slot is held from here until the response ends, however
 * it ends (sent, client gone, upstream failed), and is then given back to the store that
 * granted it.
 */
export function limitConnStages(cfg: SluiceConfig, deps: ZoneLimiterDeps, leaseTtlMs: number): PhaseStages {
  const plans = new Map<RouteConfig, RoutePlan>();
  for (const route of everyRoute(cfg)) {
    if (route.limit_conn.length === 0) continue;
    const zones = route.limit_conn.map((rule) => ({ key: cfg.limit_conn_zones.get(rule.zone)!.key, check: { zone: rule.zone, max: rule.max } }));
    plans.set(route, { zones, status: route.limit_conn_status });
  }
  const nextLeaseId = leaseIds();
  const { metrics, log } = deps;

  const settle = (ctx: RequestContext, plan: RoutePlan, checks: readonly LimitConnCheck[], leaseId: string, r: LimitConnResult, from: Store): boolean => {
    if (!r.passed) {
      ctx.limitResult = 'limit_conn_rejected';
      metrics.limitDecision('limit_conn_rejected');
      // nginx sends no Retry-After; a slot frees when any request of the key ends, which nobody can predict.
      return sendError(ctx, plan.status, 'concurrency_limited', `limiting connections by zone "${checks[r.zone]!.zone}"`, ['retry-after', '1']);
    }
    const release = (): void => {
      from.releaseConn(checks, leaseId).catch((err: unknown) => {
        log.warn({ err: (err as Error).message, request_id: ctx.requestId }, 'limit_conn release failed; the slot is held until its lease expires');
      });
    };
    // The client may have left while the store answered: its 'close' has already fired.
    if (ctx.res.closed || ctx.res.destroyed) { release(); return false; }
    ctx.res.once('close', release);
    return true;
  };

  return phaseStages(cfg, plans, (ctx, plan) => {
    const checks = zoneChecks(ctx, plan.zones, MAX_KEY_BYTES);
    if (checks.length === 0) return true;
    const leaseId = nextLeaseId();
    return decideWithStore(ctx, deps, 'limit_conn', (s) => s.limitConn(checks, leaseId, leaseTtlMs),
      (m, fleet) => m.limitConnSync(fleet > 1 ? checks.map((c) => ({ ...c, max: sharePart(c.max, fleet) })) : checks, leaseId, leaseTtlMs),
      (r, from) => settle(ctx, plan, checks, leaseId, r, from),
      // A call given up on may still take its slots when the store catches up: give them back behind it.
      () => { deps.store.releaseConn(checks, leaseId).catch(() => metrics.storeErrors.inc({ op: 'release', kind: 'error' })); });
  });
}
