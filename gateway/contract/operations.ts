import { Type } from '@sinclair/typebox';
import type { ResponseDoc } from '../../common/admin/router.js';
import { WebhookKey, WebhookKeyRotate } from '../webhook-keys/schema.js';

// The public API as customers see it through the gateway, one entry per operation: the
// image API passes through to the backends (its description is the backend's own
// document), the rest the gateway answers itself. public-openapi.ts adds what the gateway
// puts around every one (credentials, limits, errors). A new endpoint is one entry here.

export interface PublicOperation {
  readonly path: string;
  readonly method: 'get' | 'post' | 'put' | 'delete';
  /** key: an API key (or JWT) by X-API-Key, Bearer or Basic; none: open. */
  readonly auth: 'key' | 'none';
  /** Counted by the plan's limits: RateLimit headers, and 429. */
  readonly limited: boolean;
  /** Proxied to the image backends: the operation is the one in backends/service/openapi.json. */
  readonly backend?: true;
  /** Answered by the gateway. */
  readonly doc?: {
    readonly operationId: string;
    readonly summary: string;
    readonly description?: string;
    /** Component name of an optional JSON body. */
    readonly body?: string;
    readonly responses: Readonly<Record<number, ResponseDoc>>;
  };
}

const Period = Type.Object({
  used: Type.Integer(), limit: Type.Union([Type.Integer(), Type.Null()]), remaining: Type.Union([Type.Integer(), Type.Null()]),
  resets_at: Type.String({ description: 'ISO 8601.' }),
}, { additionalProperties: false });
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);

/** GET /v1/account's body (gateway/account/account-stage.ts). */
export const Account = Type.Object({
  customer: Type.String(),
  plan: Type.String(),
  limits: Type.Object({
    scope: Type.Union([Type.Literal('customer'), Type.Literal('key')]),
    rate: Type.Number(), burst: Type.Number(), quota_day: NullableInt, quota_month: NullableInt, max_inflight: NullableInt, max_body_bytes: Type.Integer(),
  }, { additionalProperties: false }),
  usage: Type.Object({
    day: Period, month: Period, inflight: Type.Integer(),
    burst_remaining: Type.Union([Type.Number(), Type.Null()], { description: "Requests the token bucket would admit right now, as this call's own decision saw it." }),
  }, { additionalProperties: false }),
}, { additionalProperties: false });

/** Schemas the gateway's own operations use, published as components. */
export const GATEWAY_SCHEMAS = { Account, WebhookKey, WebhookKeyRotate };

const unavailable = (what: string): ResponseDoc => ({ description: `\`unavailable\`: ${what} did not answer; retry later.`, schema: 'Error' });

export const PUBLIC_OPERATIONS: readonly PublicOperation[] = [
  { path: '/v1/images', method: 'post', auth: 'key', limited: true, backend: true },
  { path: '/v1/images/fetch', method: 'post', auth: 'key', limited: true, backend: true },
  { path: '/v1/detect', method: 'post', auth: 'key', limited: true, backend: true },
  { path: '/v1/results/{id}', method: 'get', auth: 'none', limited: false, backend: true },
  { path: '/v1/watermarks/{id}', method: 'put', auth: 'key', limited: true, backend: true },
  { path: '/v1/watermarks/{id}', method: 'delete', auth: 'key', limited: true, backend: true },
  {
    path: '/v1/account', method: 'get', auth: 'key', limited: true,
    doc: {
      operationId: 'getAccount', summary: "The caller's plan, limits and usage",
      description: 'Answered by the gateway after the limits: limited and counted like any call (its own call shows in the usage).',
      responses: { 200: { description: 'The account.', schema: 'Account' }, 405: { description: '`method_not_allowed`: only GET and HEAD.', schema: 'Error' }, 503: unavailable('the usage store') },
    },
  },
  {
    path: '/v1/webhooks/key', method: 'get', auth: 'key', limited: true,
    doc: {
      operationId: 'getWebhookKey', summary: "The caller's own webhook signing key",
      description: "Deliveries of the caller's webhooks are signed with it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature). Made on first use; each customer has its own.",
      responses: {
        200: { description: 'The key and where a rotation stands.', schema: 'WebhookKey' },
        405: { description: '`method_not_allowed`: only GET and HEAD.', schema: 'Error' },
        503: unavailable('the key store (or the gateway has no master key)'),
      },
    },
  },
  {
    path: '/v1/webhooks/key/rotate', method: 'post', auth: 'key', limited: true,
    doc: {
      operationId: 'rotateWebhookKey', summary: 'Replace the webhook signing key',
      description: 'The replaced key keeps signing beside the new one for the overlap (each delivery then carries both signatures), so receivers can switch without missing one.',
      body: 'WebhookKeyRotate',
      responses: {
        200: { description: 'The new key.', schema: 'WebhookKey' },
        400: { description: '`bad_request`: overlap_seconds longer than the configured overlap, or a bad body.', schema: 'Error' },
        405: { description: '`method_not_allowed`: only POST.', schema: 'Error' },
        413: { description: '`payload_too_large`: a body over 1 KiB.', schema: 'Error' },
        503: unavailable('the key store (or the gateway has no master key)'),
      },
    },
  },
  {
    path: '/v1/openapi.json', method: 'get', auth: 'none', limited: false,
    doc: {
      operationId: 'getOpenApi', summary: 'This document',
      responses: { 200: { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
  },
];
