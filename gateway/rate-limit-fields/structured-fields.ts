import type { LimitPolicy } from '../store/types.js';

// The fields of draft-ietf-httpapi-ratelimit-headers-10, both Structured Field Lists
// (RFC 9651) of String items with Integer parameters:
//   RateLimit-Policy: "<plan>";q=<burst>;w=<burst/rate s>, "<plan>-day";q=..;w=86400, "<plan>-month";q=..;w=2592000
//   RateLimit:        "<plan>";r=<tokens left>;t=<s until the next token>, "<plan>-day";r=..;t=<s to 00:00 UTC>, ...
// One item per limit the plan sets; in-flight limits have no item (the draft has no
// window for them) and show up only as a 429 with Retry-After.

/** sf-integer allows at most 15 digits. */
const SF_INT_MAX = 999_999_999_999_999;

export function sfInt(n: number): number {
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

