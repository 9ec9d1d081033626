import { readFileSync } from 'node:fs';
import type { ResponseDoc } from '../../common/admin/router.js';
import { openApiDocument, responseObject, schemaRef } from '../../common/openapi.js';
import { GATEWAY_SCHEMAS, PUBLIC_OPERATIONS, type PublicOperation } from './operations.js';

// The public contract: one OpenAPI 3.1 document of the API as customers meet it through
// the gateway, served at GET /v1/openapi.json. The image operations are the backends' own
// document (backends/service/openapi.json, generated from their TypeBox schemas and kept
// in step by its drift test); the gateway's own operations come from its schemas
// (operations.ts); around every operation this adds what the gateway does: the
// credentials it takes, the limits' headers and 429, and every error it answers itself,
// all with the one JSON error body.

const BACKEND_DOCUMENT = new URL('../../../backends/service/openapi.json', import.meta.url);

type Json = Record<string, any>;

const header = (description: string, schema: object = { type: 'string' }) => ({ description, schema });

const HEADERS = {
  RateLimitPolicy: header('The plan\'s limits (draft-ietf-httpapi-ratelimit-headers): `"<plan>";q=<burst>;w=<window s>`, and the quotas.'),
  RateLimit: header('What is left of them: `"<plan>";r=<remaining>;t=<seconds until all back>`.'),
  RetryAfter: header('Seconds to wait before retrying.', { type: 'integer', minimum: 0 }),
  WwwAuthenticate: header('`Bearer realm="sluice"`.'),
  Deprecation: header('The API key used was rotated at this moment (RFC 9745, `@<unix seconds>`); switch to its replacement.'),
  Sunset: header('When the rotated API key stops working (RFC 8594, an HTTP date).'),
  Allow: header('The methods this path takes.'),
};
const ref = (name: keyof typeof HEADERS | 'RequestId') => ({ $ref: `#/components/headers/${name}` });
/** A header every answer of that status carries (a reference cannot say so). */
const required = (name: keyof typeof HEADERS) => ({ ...HEADERS[name], required: true });

/** Headers any answer may carry from the gateway: the request id always, the limits' on a limited operation, a rotated key's notice. */
function commonHeaders(op: PublicOperation): Json {
  return {
    'X-Request-Id': ref('RequestId'),
    ...(op.limited ? { 'RateLimit-Policy': ref('RateLimitPolicy'), RateLimit: ref('RateLimit') } : {}),
    ...(op.auth === 'key' ? { Deprecation: ref('Deprecation'), Sunset: ref('Sunset') } : {}),
  };
}

const error = (description: string, headers: Json = {}): ResponseDoc => ({ description, schema: 'Error', headers });

/** What the gateway itself may answer for this operation, by status. */
function gatewayResponses(op: PublicOperation): Record<number, ResponseDoc> {
  const out: Record<number, ResponseDoc> = {
    400: error('`bad_request` (gateway): malformed HTTP, a path that climbs out of the root, conflicting Content-Length and Transfer-Encoding.'),
    408: error('`request_timeout`: the request head or body not received in time, or the body arriving slower than the minimum rate.'),
    431: error('`header_too_large`: the request head is over the limit.'),
    503: error('`unavailable`: no healthy backend, or a store the gateway needs is down; `overloaded`: load shedding serves higher plans first.', { 'Retry-After': ref('RetryAfter') }),
  };
  if (op.auth === 'key') {
    out[401] = error('`unauthorized`: missing, unknown, revoked, expired or rotated-out credential, or a malformed key (checksum).', { 'WWW-Authenticate': required('WwwAuthenticate') });
    out[403] = error('`forbidden`: the plan does not include this route, or the key is used from outside its client-address allowlist.');
  }
  if (op.limited) {
    out[429] = error('`rate_limited`, `quota_exceeded` or `concurrency_limited`: which limit was hit.', {
      'Retry-After': required('RetryAfter'), 'RateLimit-Policy': required('RateLimitPolicy'), RateLimit: required('RateLimit'),
    });
  }
  if (op.backend === true) {
    out[413] = error('`payload_too_large` (gateway): the body is over the plan\'s limit, refused before it is read when declared.');
    out[502] = error('`bad_gateway`: the backend refused, reset or sent garbage.');
    out[504] = error('`upstream_timeout`: the backend was too slow.');
  }
  return out;
}

/** A response the backend describes, with what the gateway may answer under the same status added. */
function merge(base: Json | undefined, extra: Json | undefined, headers: Json): Json {
  if (base === undefined) return { ...extra, headers: { ...headers, ...extra?.headers } };
  if (extra === undefined) return { ...base, headers: { ...headers, ...base.headers } };
  return { ...base, description: `${base.description} Or, from the gateway: ${extra.description}`, headers: { ...headers, ...extra.headers, ...base.headers } };
}

function operation(op: PublicOperation, backend: Json): Json {
  let base: Json;
  if (op.backend === true) {
    base = backend.paths[op.path]?.[op.method];
    if (base === undefined) throw new Error(`the backend document has no ${op.method} ${op.path}`);
  } else {
    const d = op.doc!;
    base = {
      operationId: d.operationId, summary: d.summary, ...(d.description === undefined ? {} : { description: d.description }),
      ...(d.body === undefined ? {} : { requestBody: { required: false, content: { 'application/json': { schema: schemaRef(d.body) } } } }),
      responses: Object.fromEntries(Object.entries(d.responses).map(([s, r]) => [s, responseObject(r)])),
    };
  }
  const extra = Object.fromEntries(Object.entries(gatewayResponses(op)).map(([s, r]) => [s, responseObject(r)]));
  const statuses = [...new Set([...Object.keys(base.responses), ...Object.keys(extra)])].sort();
  const headers = commonHeaders(op);
  return {
    ...base,
    security: op.auth === 'key' ? [{ apiKey: [] }, { bearer: [] }, { basic: [] }] : [],
    responses: Object.fromEntries(statuses.map((s) => [s, merge(base.responses[s], extra[s], headers)])),
  };
}

export function publicOpenApi(): Record<string, unknown> {
  const backend = JSON.parse(readFileSync(BACKEND_DOCUMENT, 'utf8')) as Json;
  const paths: Record<string, Json> = {};
  for (const op of PUBLIC_OPERATIONS) {
    const path = (paths[op.path] ??= {});
    path[op.method] = operation(op, backend);
    // Path-level parameters of the backend's description (a watermark's id, say) come along.
    if (op.backend === true && backend.paths[op.path].parameters !== undefined) path.parameters = backend.paths[op.path].parameters;
  }
  return openApiDocument({
    title: 'Sluice image API',
    version: backend.info.version,
    description: 'The image API as customers call it through the Sluice gateway. Credentials: an API key as `X-API-Key`, as `Authorization: Bearer`, or as the '
      + 'user name of HTTP Basic with an empty password (`curl -u KEY:`); a JWT as Bearer when the gateway is configured for them. Limited operations answer with '
      + '`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers), and a 429 adds `Retry-After`. Every error is '
      + '`{"error":{"code","message","request_id"}}` (plus `field` when one option is at fault), and every answer carries `X-Request-Id`. A method a path does not list is answered 405 '
      + '`method_not_allowed` with `Allow`.',
    servers: ['http://127.0.0.1:8080'],
    securitySchemes: {
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'An API key (`sluice_<environment>_...`).' },
      bearer: { type: 'http', scheme: 'bearer', description: 'An API key, or a JWT when the gateway verifies them.' },
      basic: { type: 'http', scheme: 'basic', description: 'The API key as the user name, an empty password.' },
    },
    paths,
    parameters: backend.components.parameters,
    headers: { ...backend.components.headers, ...HEADERS },
    plainSchemas: backend.components.schemas,
    schemas: GATEWAY_SCHEMAS,
  });
}
