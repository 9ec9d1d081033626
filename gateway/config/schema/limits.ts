import { Type, type Static } from '@sinclair/typebox';
import { Section, StringEnum } from '../../../common/schema-types.js';
import { FailurePolicySchema } from '../../../common/store-config.js';
import { CostOverrides, Costs } from './credits.js';

// A plan's limits, and a customer's overrides of them. The overrides are one schema for
// the config file and the admin API (PUT /admin/customers/{id}), so the two cannot
// disagree about what a limit may be.

const Limits = {
  rate: Type.Number({ minimum: 0, description: 'Token bucket refill, tokens per second; 0 turns the bucket off.' }),
  burst: Type.Number({ minimum: 0, description: 'Bucket size, tokens (default: rate); at least 1 unless rate is 0.' }),
  quota_day: Type.Integer({ minimum: 0, description: 'Requests per UTC day; 0: unlimited.' }),
  quota_month: Type.Integer({ minimum: 0, description: 'Requests per UTC month; 0: unlimited.' }),
  max_inflight: Type.Integer({ minimum: 0, description: 'Requests at once; 0: unlimited.' }),
  max_body_bytes: Type.Integer({ minimum: 0, description: 'Largest request body (413 beyond it).' }),
};

export const LimitOverrides = Section({
  rate: Type.Optional(Limits.rate),
  burst: Type.Optional(Limits.burst),
  quota_day: Type.Optional(Limits.quota_day),
  quota_month: Type.Optional(Limits.quota_month),
  max_inflight: Type.Optional(Limits.max_inflight),
  max_body_bytes: Type.Optional(Limits.max_body_bytes),
  costs: Type.Optional(CostOverrides),
}, {
  // A bucket that cannot hold one token admits nothing.
  if: { properties: { rate: { type: 'number', const: 0 } }, required: ['rate'] },
  else: { properties: { burst: { type: 'number', minimum: 1, errorMessage: 'must be >= 1 unless rate is 0' } } },
  default: {},
  description: "Limits that replace the plan's for this customer.",
});
export type LimitOverrides = Static<typeof LimitOverrides>;

export const Plan = Section({
  rate: { ...Limits.rate, default: 0 },
  burst: Type.Optional(Limits.burst),
  quota_day: { ...Limits.quota_day, default: 0 },
  quota_month: { ...Limits.quota_month, default: 0 },
  max_inflight: { ...Limits.max_inflight, default: 0 },
  max_body_bytes: { ...Limits.max_body_bytes, default: 10 * 1024 * 1024 },
  priority: Type.Integer({ default: 0, description: 'Load shedding drops the lowest priority first.' }),
  scope: StringEnum(['customer', 'key'] as const, { default: 'customer', description: 'Whose traffic one bucket and one quota count.' }),
  failure_policy: Type.Optional(FailurePolicySchema),
  shadow: Type.Boolean({ default: false, description: 'Decide and count, but let every request through (trying a plan on live traffic).' }),
  deny_cache_ms: Type.Integer({ minimum: 0, default: 60_000, description: 'Longest a store denial is remembered in this process; 0 turns that off.' }),
  costs: Type.Optional(Costs),
});

/** Where a customer's own events (quota.threshold) are POSTed: http(s), checked by the SSRF address policy. */
export const WebhookUrl = Type.String({ pattern: '^https?://[^\\s]+$', patternErrorMessage: 'must be an http:// or https:// URL', maxLength: 2048,
  description: "The customer's webhook endpoint for account events (quota.threshold), delivered by sluice-webhooks." });

export const Customer = Section({
  plan: Type.Optional(Type.String({ minLength: 1, description: "The customer's plan (a key may name its own)." })),
  overrides: LimitOverrides,
  webhook_url: Type.Optional(WebhookUrl),
});
