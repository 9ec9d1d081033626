import type { RouteConfig, SluiceConfig } from '../config/types.js';
import { everyRoute } from '../route/resolve.js';
import { sendError } from '../http/errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { LimitReqCheck, LimitReqResult } from '../store/types.js';
import { decideWithStore, phaseStages, zoneChecks, type PhaseStages, type ZoneLimiterDeps, type ZoneRule } from './zone-stage.js';

interface RoutePlan {
  readonly zones: readonly ZoneRule<LimitReqCheck>[];
  readonly status: number;
}

/** nginx skips keys longer than this (with an error in its log) rather than limit them. */
const MAX_KEY_BYTES = 65535;

/** nginx `limit_req` (placement: see PhaseStages in zone-stage.ts). */
export function limitReqStages(cfg: SluiceConfig, deps: ZoneLimiterDeps): PhaseStages {
  const plans = new Map<RouteConfig, RoutePlan>();
  for (const route of everyRoute(cfg)) {
    if (route.limit_req.length === 0) continue;
    const zones = route.limit_req.map((rule) => {
      const z = cfg.limit_req_zones.get(rule.zone)!;
      return {
        key: z.key,
        check: { zone: z.name, rateMilli: z.rate_milli, burstMilli: rule.burst * 1000, delayMilli: (rule.nodelay ? rule.burst : rule.delay) * 1000 },
      };
    });
    plans.set(route, { zones, status: route.limit_req_status });
  }
  const { metrics } = deps;

  const settle = (ctx: RequestContext, plan: RoutePlan, checks: readonly LimitReqCheck[], r: LimitReqResult): boolean | Promise<boolean> => {
    ctx.limitReq = r;
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

  return phaseStages(cfg, plans, (ctx, plan) => {
    const checks = zoneChecks(ctx, plan.zones, MAX_KEY_BYTES);
    if (checks.length === 0) return true;
    return decideWithStore(ctx, deps, 'limit_req', (s) => s.limitReq(checks), (m, fleet) => m.limitReqSync(fleet > 1 ? checks.map((c) => zoneShare(c, fleet)) : checks),
      (r) => settle(ctx, plan, checks, r));
  });
}

/** One gateway's part of a zone when `n` share it: its rate, burst and delay over n. */
function zoneShare(c: LimitReqCheck, n: number): LimitReqCheck {
  return { ...c, rateMilli: c.rateMilli / n, burstMilli: c.burstMilli / n, delayMilli: c.delayMilli / n };
}

/** Holds a request back like nginx's delayed write event: a timer, dropped if the client leaves. */
function holdFor(ctx: RequestContext, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onClose = (): void => { clearTimeout(timer); resolve(false); };
    const timer = setTimeout(() => { ctx.res.off('close', onClose); resolve(!ctx.res.destroyed); }, ms);
    ctx.res.once('close', onClose);
  });
}
