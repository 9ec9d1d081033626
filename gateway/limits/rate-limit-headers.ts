import type { Identity } from '../auth/identity.js';
import type { Decision, LimitPolicy } from '../store/types.js';

// The fields of draft-ietf-httpapi-ratelimit-headers-10, both Structured Field Lists
// (RFC 9651) of String items with Integer parameters:
//   RateLimit-Policy: "<plan>";q=<burst>;w=<burst/rate s>, "<plan>-day";q=..;w=86400, "<plan>-month";q=..;w=2592000
//   RateLimit:        "<plan>";r=<tokens left>;t=<s until the next token>, "<plan>-day";r=..;t=<s to 00:00 UTC>, ...
// One item per limit the plan sets; in-flight limits have no item (the draft has no
// window for them) and show up only as a 429 with Retry-After.

/** sf-integer allows at most 15 digits. */
const SF_INT_MAX = 999_999_999_999_999;

function sfInt(n: number): number {
  return Math.min(SF_INT_MAX, Math.max(0, Math.floor(n)));
}

/**
 * An sf-string: only printable ASCII may appear, with `"` and `\` escaped. Other
 * characters (a plan named in another script, a control character) are
 * percent-encoded, so any plan name still yields one valid item and the same name
 * in both fields.
 */
export function sfString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${out}"`;
}

/** RateLimit-Policy: fixed per plan and overrides, so callers compute it once per identity. */
export function rateLimitPolicyValue(planName: string, p: LimitPolicy): string {
  const parts: string[] = [];
  if (p.rate > 0) parts.push(`${sfString(planName)};q=${sfInt(p.burst)};w=${Math.max(1, sfInt(Math.ceil(p.burst / p.rate)))}`);
  if (p.quotaDay > 0) parts.push(`${sfString(`${planName}-day`)};q=${sfInt(p.quotaDay)};w=86400`);
  if (p.quotaMonth > 0) parts.push(`${sfString(`${planName}-month`)};q=${sfInt(p.quotaMonth)};w=2592000`);
  return parts.join(', ');
}

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
export function rateLimitValue(id: Identity, d: Decision): string {
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
export function denyMessage(id: Identity, d: Decision, cost = 1): string {
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
