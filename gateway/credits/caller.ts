import type { LimitPolicy } from '../store/types.js';
import type { Pricing } from './pricing.js';

/**
 * What the limits and the credits read of the caller; auth/identity.ts's Identity is one.
 * They name only this, so they sit below auth, whose identity precomputes its pricing and
 * its RateLimit-Policy header with them.
 */
export interface Caller {
  readonly customer: string;
  /** Limits apply to this subject: the customer, or one key when the plan says scope: key. */
  readonly subject: string;
  readonly plan: { readonly name: string };
  readonly policy: LimitPolicy;
  /** Costs in units; undefined when the plan counts requests. */
  readonly pricing: Pricing | undefined;
  /** Where the customer's account events (quota.threshold) go, if anywhere. */
  readonly webhookUrl: string | undefined;
}
