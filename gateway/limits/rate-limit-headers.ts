import type { Identity } from '../auth/identity.js';
import type { Decision } from '../store/types.js';

/**
 * The RateLimit field of draft-ietf-httpapi-ratelimit-headers-10: one item per policy
 * named in RateLimit-Policy, r = what is left, t = seconds until it is all back.
 */
export function rateLimitValue(id: Identity, d: Decision): string {
  const p = id.policy;
  const name = id.plan.name;
  let v = '';
  if (p.rate > 0) v = `"${name}";r=${d.remaining};t=${Math.ceil(d.fullInMs / 1000)}`;
  if (p.quotaDay > 0) {
    v += `${v === '' ? '' : ', '}"${name}-day";r=${Math.max(0, p.quotaDay - d.dayUsed)};t=${Math.ceil(d.dayResetMs / 1000)}`;
  }
  if (p.quotaMonth > 0) {
    v += `${v === '' ? '' : ', '}"${name}-month";r=${Math.max(0, p.quotaMonth - d.monthUsed)};t=${Math.ceil(d.monthResetMs / 1000)}`;
  }
  return v;
}

export function denyMessage(id: Identity, d: Decision): string {
  const p = id.policy;
  switch (d.reason) {
    case 'rate_limited':
      return `rate limit of ${p.rate}/s with burst ${p.burst} exceeded for plan ${id.plan.name}`;
    case 'quota_exceeded':
      return p.quotaDay > 0 && d.dayUsed >= p.quotaDay
        ? `daily quota of ${p.quotaDay} requests used up; it resets at 00:00 UTC`
        : `monthly quota of ${p.quotaMonth} requests used up; it resets on the 1st at 00:00 UTC`;
    default:
      return `too many requests in flight (at most ${p.maxInflight} for plan ${id.plan.name})`;
  }
}
