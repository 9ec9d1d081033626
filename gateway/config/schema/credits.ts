import { Type } from '@sinclair/typebox';
import { Section } from '../../../common/schema-types.js';

// Credits: what a request costs in units (a plan's `costs`, and a customer's override of
// them), and the `billing` section: refunds, idempotent POSTs, daily usage and quota
// warnings (docs/limits.md, docs/billing.md). A plan without `costs` charges one unit per
// request, as before costs existed.

const Units = (description: string) => Type.Integer({ minimum: 0, maximum: 1_000_000, description });

const CostFields = {
  base: Units('Units of a request on a route not listed in routes.'),
  routes: Type.Record(Type.String({ minLength: 1 }), Units('Units'), { description: 'Base units by route name, instead of base.' }),
  format_auto: Units('Units added when X-Options asks for format: auto (several encoders run).'),
  detection: Units('Units added for POST /v1/detect and for a face crop (crop mode face, gravity face or faces).'),
  per_megapixel: Units('Units added per started megapixel of input.'),
  bytes_per_megapixel: Type.Integer({ minimum: 1, description: 'Before admission the edge sees only Content-Length: it estimates one megapixel per this many bytes. The backend reports the real pixels and the difference is settled.' }),
  max_units: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'The most one request is ever charged, settlement included (default: the largest base + format_auto + detection + per_megapixel x 50, the backend\'s default pixel limit).' }),
};

export const Costs = Section({
  base: { ...CostFields.base, default: 1 },
  routes: { ...CostFields.routes, default: {} },
  format_auto: { ...CostFields.format_auto, default: 0 },
  detection: { ...CostFields.detection, default: 0 },
  per_megapixel: { ...CostFields.per_megapixel, default: 0 },
  bytes_per_megapixel: { ...CostFields.bytes_per_megapixel, default: 250_000 },
  max_units: Type.Optional(CostFields.max_units),
}, { description: 'What a request costs, in units: the bucket, the quotas and the RateLimit headers count these. Absent: one unit per request.' });

/** A customer's costs: each field given replaces the plan's (routes are merged by name). */
export const CostOverrides = Section({
  base: Type.Optional(CostFields.base),
  routes: Type.Optional(CostFields.routes),
  format_auto: Type.Optional(CostFields.format_auto),
  detection: Type.Optional(CostFields.detection),
  per_megapixel: Type.Optional(CostFields.per_megapixel),
  bytes_per_megapixel: Type.Optional(CostFields.bytes_per_megapixel),
  max_units: Type.Optional(CostFields.max_units),
}, { description: "Costs that replace the plan's for this customer (a plan without costs gets them too)." });

const RefundStatus = Type.Union([
  Type.Integer({ minimum: 500, maximum: 599 }),
  Type.String({ pattern: '^5xx$', patternErrorMessage: 'must be 5xx or a status from 500 to 599' }),
], { description: 'A status from 500 to 599, or 5xx for all of them.' });

const Idempotency = Section({
  enabled: Type.Boolean({ default: true, description: 'Honour Idempotency-Key on the paths below.' }),
  paths: Type.Array(Type.String({ pattern: '^/', patternErrorMessage: 'must start with /' }), {
    default: ['/v1/images', '/v1/detect'], description: 'POSTs to these paths honour Idempotency-Key.' }),
  ttl_s: Type.Integer({ minimum: 60, maximum: 30 * 86400, default: 86400, description: 'How long a key and its response are kept (24 h).' }),
  max_response_bytes: Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024, default: 1024 * 1024,
    description: 'Largest response body kept for replay; a larger one is replayed as 303 See Other to its result URL.' }),
  max_request_bytes: Type.Integer({ minimum: 1024, maximum: 256 * 1024 * 1024, default: 32 * 1024 * 1024,
    description: 'A request with an Idempotency-Key is read whole before it is forwarded (to fingerprint it); larger bodies get 413.' }),
}, { default: {}, description: 'Idempotency-Key on POSTs (draft-ietf-httpapi-idempotency-key-header-06).' });

const Usage = Section({
  retention_days: Type.Integer({ minimum: 1, maximum: 3660, default: 400, description: 'Days of per-customer daily usage kept.' }),
  flush_ms: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'Usage is counted in memory and written this often, in one batch (no store call per request).' }),
}, { default: {}, description: 'Daily usage per customer for billing (GET /v1/account/usage, GET /admin/usage).' });

const QuotaWarnings = Section({
  thresholds: Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), { default: [80, 100], uniqueItems: true,
    description: 'Percentages of a day or month quota whose crossing sends a quota.threshold webhook, once per period.' }),
  allow: Type.Array(Type.String({ minLength: 1 }), { default: [],
    description: 'Addresses/CIDRs a customer webhook_url may point at although private or loopback (as sluice-webhooks --allow).' }),
}, { default: {}, description: "quota.threshold webhooks to a customer's webhook_url, through the durable webhook queue (Redis store)." });

export const Billing = Section({
  refund_statuses: Type.Array(RefundStatus, { default: ['5xx'],
    description: 'Responses with these statuses (failed by Sluice or a backend) give their quota units back. Never 4xx.' }),
  idempotency: Idempotency,
  usage: Usage,
  quota_warnings: QuotaWarnings,
}, { default: {}, description: 'Refunds, idempotent POSTs, daily usage for billing, quota warnings.' });
