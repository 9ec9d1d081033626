import type { Caller } from '../credits/caller.js';
import type { Decision, LimitPolicy } from '../store/types.js';
import { sfInt, sfString } from '../rate-limit-fields/structured-fields.js';

/**
 * Seconds until the bucket holds one more whole token, the draft's `t` ("until
 * additional quota is made available"), not until it is full: after a 429 the
 * client may retry at `t`, and Retry-After is never earlier than `t` (draft §6).
 * undefined when the bucket is full and nothing more will come.
 */
function bucketResetSeconds(p: LimitPolicy, d: Decision): number | undefined {
  if (!d.allowed && d.reason === 'rate_limited') return Math.ceil(d.retryAfterMs / 1000);
  if (d.fullInMs <= 0) return undefined;
  // fullInMs covers (burst - tokens); the tokens beyond the next whole one take the rest.
  const nextMs = Math.min(d.fullInMs, d.fullInMs - (p.burst - d.remaining - 1) * 1000 / p.rate);
  return Math.ceil(Math.max(0, nextMs) / 1000);
}

/** RateLimit: one item per policy named in RateLimit-Policy, for this decision. */
export function rateLimitValue(id: Caller, d: Decision): string {
  const p = id.policy;
  const name = id.plan.name;
  const parts: string[] = [];
  if (p.rate > 0) {
    const t = bucketResetSeconds(p, d);
    parts.push(`${sfString(name)};r=${sfInt(d.remaining)}${t === undefined ? '' : `;t=${sfInt(t)}`}`);
  }
  if (p.quotaDay > 0) {
    parts.push(`${sfString(`${name}-day`)};r=${sfInt(p.quotaDay - d.dayUsed)};t=${sfInt(Math.ceil(d.dayResetMs / 1000))}`);
  }
  if (p.quotaMonth > 0) {
    parts.push(`${sfString(`${name}-month`)};r=${sfInt(p.quotaMonth - d.monthUsed)};t=${sfInt(Math.ceil(d.monthResetMs / 1000))}`);
  }
  return parts.join(', ');
}

/** Retry-After of a denial: whole seconds, at least 1 (RFC 9110 delay-seconds). */
export function retryAfterSeconds(d: Decision): number {
  return Math.max(1, Math.ceil(d.retryAfterMs / 1000));
}

/** `cost`: the units the refused request asked for (1 without costs, whose quotas count requests). */
export function denyMessage(id: Caller, d: Decision, cost = 1): string {
  const p = id.policy;
  switch (d.reason) {
    case 'rate_limited':
      return id.pricing === undefined
        ? `rate limit of ${p.rate}/s with burst ${p.burst} exceeded for plan ${id.plan.name}`
        : `rate limit of ${p.rate} units/s with burst ${p.burst} exceeded for plan ${id.plan.name}: this request costs ${cost} units`;
    case 'quota_exceeded': {
      const what = id.pricing === undefined ? 'requests' : 'units';
      const left = id.pricing === undefined ? '' : ` (this request costs ${cost})`;
      return p.quotaDay > 0 && d.dayUsed + cost > p.quotaDay
        ? `daily quota of ${p.quotaDay} ${what} used up${left}; it resets at 00:00 UTC`
        : `monthly quota of ${p.quotaMonth} ${what} used up${left}; it resets on the 1st at 00:00 UTC`;
    }
    default:
      return `too many requests in flight (at most ${p.maxInflight} for plan ${id.plan.name})`;
  }
}
