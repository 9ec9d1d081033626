import { randomBytes } from 'node:crypto';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { GuardedLimiter, Verdict } from './guarded-limiter.js';
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

export function limitsStage(limiter: GuardedLimiter, metrics: Metrics, leaseTtlMs: number): Stage {
  const nextLeaseId = leaseIds();

  const settle = (ctx: RequestContext, v: Verdict, leaseId: string): boolean => {
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
    if (!d.allowed) {
      const reason = d.reason!;
      ctx.limitResult = reason;
      metrics.limitDecision(reason);
      return sendError(ctx, 429, reason, denyMessage(id, d), ['retry-after', String(retryAfterSeconds(d))]);
    }
    ctx.limitResult = v.source === 'fallback' ? 'fallback_open' : 'allowed';
    metrics.limitDecision(ctx.limitResult);
    if (id.policy.maxInflight > 0) {
      ctx.leaseId = leaseId;
      ctx.leaseSource = v.source;
    }
    return true;
  };

  return (ctx) => {
    const id = ctx.identity;
    if (id === undefined) return true;
    const leaseId = nextLeaseId();
    const v = limiter.admit(id.subject, id.policy, leaseId, leaseTtlMs, id.failurePolicy);
    if (!(v instanceof Promise)) return settle(ctx, v, leaseId);
    return v.then((res) => settle(ctx, res, leaseId));
  };
}
