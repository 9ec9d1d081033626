import type { BlockList } from 'node:net';
import type { CostOverridesConfig, CustomerConfig, FailurePolicy, LimitOverrides, PlanConfig } from '../config/types.js';
import { compilePricing, type Pricing } from '../credits/pricing.js';
import { rateLimitPolicyValue } from '../rate-limit-fields/structured-fields.js';
import type { CustomerRecord, LimitPolicy } from '../store/types.js';

/** Who is calling and what they may do; built once per key or token, then cached. */
export interface Identity {
  readonly customer: string;
  readonly plan: PlanConfig;
  /** Limits apply to this subject: the customer, or one key when the plan says scope: key. */
  readonly subject: string;
  readonly policy: LimitPolicy;
  readonly maxBodyBytes: number;
  readonly failurePolicy: FailurePolicy;
  /** Precomputed RateLimit-Policy value (IETF httpapi draft-10). */
  readonly policyHeader: string;
  /** For an API key: what is checked on each request with it. Undefined for a JWT. */
  readonly key: KeyTerms | undefined;
  /** What requests cost in units; undefined: one unit each (no costs configured). */
  readonly pricing: Pricing | undefined;
  /** The customer's endpoint for account events (quota.threshold), if it registered one. */
  readonly webhookUrl: string | undefined;
}

/** An API key's own terms, worked out once when its record is loaded. */
export interface KeyTerms {
  readonly digest: string;
  /** Unix ms from which the key is refused (its expiry, or the end of its rotation grace); Infinity: never. */
  readonly validUntil: number;
  /** The 401's message once validUntil has passed. */
  readonly endMessage: string;
  /** For a rotated key, Deprecation (RFC 9745) and Sunset (RFC 8594), as [name, value, ...]; else empty. */
  readonly headers: readonly string[];
  /** Client addresses it may be used from; undefined: anywhere. */
  readonly allow: BlockList | undefined;
}

export interface IdentityInput {
  readonly customer: string;
  readonly planName: string | undefined;
  /** Key digest, for per-key limits. */
  readonly keyDigest: string | undefined;
  readonly configCustomer: CustomerConfig | undefined;
  readonly storedCustomer: CustomerRecord | undefined;
  readonly key?: KeyTerms | undefined;
}

/**
 * Plan: the key's (or token's) own, else the customer's stored plan, else the customer's
 * config plan. Overrides: config first, then the stored record, so an admin change wins.
 */
export function buildIdentity(input: IdentityInput, plans: ReadonlyMap<string, PlanConfig>, globalPolicy: FailurePolicy): Identity | undefined {
  const planName = input.planName ?? input.storedCustomer?.plan ?? input.configCustomer?.plan;
  if (planName === undefined) return undefined;
  const plan = plans.get(planName);
  if (plan === undefined) return undefined;
  const o: LimitOverrides = { ...input.configCustomer?.overrides, ...input.storedCustomer?.overrides };
  const rate = o.rate ?? plan.rate;
  const burst = o.burst ?? (plan.burst > 0 ? plan.burst : rate);
  const policy: LimitPolicy = {
    rate,
    burst,
    quotaDay: o.quota_day ?? plan.quota_day,
    quotaMonth: o.quota_month ?? plan.quota_month,
    maxInflight: o.max_inflight ?? plan.max_inflight,
  };
  const subject = plan.scope === 'key' && input.keyDigest !== undefined ? `k:${input.keyDigest.slice(0, 32)}` : input.customer;
  return Object.freeze({
    customer: input.customer,
    plan,
    subject,
    policy,
    maxBodyBytes: o.max_body_bytes ?? plan.max_body_bytes,
    failurePolicy: plan.failure_policy ?? globalPolicy,
    policyHeader: rateLimitPolicyValue(plan.name, policy),
    key: input.key,
    pricing: compilePricing(plan.costs, o.costs as CostOverridesConfig | undefined),
    webhookUrl: input.storedCustomer?.webhookUrl ?? input.configCustomer?.webhook_url,
  });
}
