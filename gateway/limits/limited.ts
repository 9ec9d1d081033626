import type { LimitPolicy } from '../store/types.js';

/**
 * What the limits read of the caller. auth/identity.ts's Identity is one; the limits name
 * only this, so they depend on the store's types and not on auth (which sits below them:
 * an identity precomputes its RateLimit-Policy header with rate-limit-headers.ts).
 */
export interface Limited {
  /** Limits apply to this subject: the customer, or one key when the plan says scope: key. */
  readonly subject: string;
  readonly plan: { readonly name: string };
  readonly policy: LimitPolicy;
  /** Costs in units (credits/pricing.ts); undefined when the plan counts requests. */
  readonly pricing: object | undefined;
}
