import { randomBytes } from 'node:crypto';
import { operationOf } from '../credits/operation.js';
import { estimateUnits } from '../credits/pricing.js';
import type { QuotaWatch } from '../credits/quota-warnings.js';
import { sendError } from '../http/errors.js';
import { labelChildren, type Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { DenyCache, CachedVerdict } from './deny-cache.js';
import type { GuardedLimiter } from './guarded-limiter.js';
import { NearLimit } from './near-limit.js';
import { denyMessage, rateLimitValue, retryAfterSeconds } from './rate-limit-headers.js';

/**
 * limits: token bucket, quotas and in-flight, decided in one store call. Denials carry
 * Retry-After; every answer carries RateLimit-Policy and RateLimit.
 */
/** A source of lease ids; they only need to be unique across gateways sharing a store. */
export function leaseIds(): () => string {
  const prefix = randomBytes(6).toString('hex');
  let seq = 0;
  return () => `${prefix}:${++seq}`;
}

/**
 * `denials`: the process's deny cache (server.ts hands it the fleet's `denial`
 * invalidations). `quota`: told of every admission the store decided, to send quota
 * warnings.
 */
export function limitsStage(limiter: GuardedLimiter, metrics: Metrics, leaseTtlMs: number, denials: DenyCache, quota: QuotaWatch | undefined): Stage {
  const nextLeaseId = leaseIds();
  const near = new NearLimit(metrics);
  const shadowChild = labelChildren((...v: string[]) => metrics.limitShadowRejections.labels(...v));
  const shadowRejected = (plan: string, reason: string): void => shadowChild(plan, reason).inc();
  const settle = (ctx: RequestContext, v: CachedVerdict, leaseId: string, cost: number): boolean => {
    const id = ctx.identity!;
    if (v.source === 'closed') {
      ctx.limitResult = 'store_closed';
      metrics.limitDecision('store_closed');
      return sendError(ctx, 503, 'unavailable', 'rate-limit store unavailable and the plan fails closed', ['retry-after', '1']);
    }
    const d = v.decision;
    ctx.decision = d;
    if (id.policyHeader !== '') {
      ctx.limitHeaders.push('ratelimit-policy', id.policyHeader, 'ratelimit', rateLimitValue(id, d));
    }
    if (v.source === 'cache') metrics.limitDenyCacheHits.inc();
    if (!d.allowed) {
      const reason = d.reason!;
      if (id.plan.shadow) {
        // A denial took nothing in the store (no token, no quota, no lease), so letting it pass leaves nothing to undo.
        shadowRejected(id.plan.name, reason);
        ctx.limitResult = 'shadow';
        metrics.limitDecision('shadow');
        return true;
      }
      ctx.limitResult = reason;
      metrics.limitDecision(reason);
      return sendError(ctx, 429, reason, denyMessage(id, d, cost), ['retry-after', String(retryAfterSeconds(d))]);
    }
    ctx.charged = cost;
    ctx.decidedAt = Date.now();
    if (v.source === 'store') {
      near.observe(id, d);
      quota?.admitted(id, d, cost);
    }
    ctx.limitResult = v.source === 'fallback' ? 'fallback_open' : 'allowed';
    metrics.limitDecision(ctx.limitResult);
    if (id.policy.maxInflight > 0) {
      ctx.leaseId = leaseId;
      ctx.leaseSource = v.source === 'cache' ? 'store' : v.source;
    }
    return true;
  };

  return (ctx) => {
    const id = ctx.identity;
    if (id === undefined) return true;
    const leaseId = nextLeaseId();
    const op = operationOf(ctx.req, ctx.path);
    ctx.operation = op;
    const full = id.pricing === undefined ? 1 : estimateUnits(id.pricing, ctx.route!.name, op);
    ctx.estimate = full;
    // A bucket never holds more than burst: a dearer request is admitted at burst, and
    // settled at its price after the response (docs/limits.md).
    const cost = id.policy.rate > 0 ? Math.min(full, Math.floor(id.policy.burst)) : full;
    const admit = () => limiter.admit(id.subject, id.policy, leaseId, leaseTtlMs, id.failurePolicy, cost);
    // Only a remote store makes a denial worth remembering: the memory store decides as cheaply as the cache would.
    const v = limiter.remote ? denials.decide(id.subject, id.policy, cost, id.plan.deny_cache_ms, admit) : admit();
    if (!(v instanceof Promise)) return settle(ctx, v, leaseId, cost);
    return v.then((res) => settle(ctx, res, leaseId, cost));
  };
}
