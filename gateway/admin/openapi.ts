import type { TSchema } from '@sinclair/typebox';
import { documentSchema } from '../../common/schema-check.js';
import { errorEnvelope } from '../../common/errors.js';
import { Customer, CustomerId, CustomerPut, Digest, KeyCreate, KeyCreated, KeyList, Readiness, Status, Usage } from './admin-schemas.js';

// The admin API's OpenAPI 3.1 document, built when the gateway starts from the schemas
// admin-server.ts validates with, so the two cannot drift; served at /admin/openapi.json.

const SCHEMAS = { Error: errorEnvelope('admin'), Status, Readiness, KeyCreate, KeyCreated, KeyList, CustomerPut, Customer, Usage };
type Name = keyof typeof SCHEMAS;

const ref = (name: Name) => ({ $ref: `#/components/schemas/${name}` });
const json = (description: string, name: Name) => ({ description, content: { 'application/json': { schema: ref(name) } } });
const error = (description: string) => json(description, 'Error');
const body = (name: Name) => ({ required: true, content: { 'application/json': { schema: ref(name) } } });
const pathParam = (name: string, schema: TSchema) => ({ name, in: 'path', required: true, schema: plain(schema) });

const TOO_LARGE = { 413: error('Body over 64 KiB (`payload_too_large`).') };
// Every /admin/ operation but this document's own needs the token.
const GUARDED = {
  401: error('No or wrong admin token (`unauthorized`).'),
  403: error('The admin API is disabled: `admin.token_digest` is not set (`forbidden`).'),
};
const BAD_ID = { 400: error('Bad customer id (`bad_request`).') };
const customerPath = [pathParam('id', CustomerId)];

/** As ajv checks it (documentSchema), without the server's own wording of errors (not part of the contract). */
function plain(schema: TSchema): object {
  return JSON.parse(JSON.stringify(documentSchema(schema), (k, v: unknown) => (k === 'errorMessage' || k === 'patternErrorMessage' ? undefined : v))) as object;
}

function build(): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sluice admin API',
      version: '1',
      description: "The gateway's admin port (9090 by default). `/healthz`, `/readyz`, `/metrics` and this document are open; everything else under `/admin/` needs `Authorization: Bearer <admin token>` (the config holds only its SHA-256, `admin.token_digest`). Errors are `{\"error\":{\"code\",\"message\",\"request_id\"}}`; a `bad_request` message lists every problem, each naming its field. `sluice admin` is the command-line client.",
    },
    servers: [{ url: 'http://127.0.0.1:9090' }],
    security: [{ adminToken: [] }],
    paths: {
      '/healthz': { get: { operationId: 'healthz', summary: 'The process is up.', security: [], responses: { 200: json('Up.', 'Status') } } },
      '/readyz': {
        get: {
          operationId: 'readyz', summary: 'The store answers (Redis, when configured).', security: [],
          responses: { 200: json('Ready.', 'Readiness'), 503: json('The store did not answer in time.', 'Readiness') },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics', summary: "Prometheus metrics (every worker's, aggregated).", security: [],
          responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      '/admin/openapi.json': {
        get: {
          operationId: 'openapi', summary: 'This document.', security: [],
          responses: { 200: { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/admin/keys': {
        post: {
          operationId: 'createKey', summary: 'Create an API key. The plain key is in this response only.',
          requestBody: body('KeyCreate'),
          responses: {
            201: json('Created.', 'KeyCreated'),
            400: error('Bad field, unknown field, unknown plan, or no plan for a customer that has none (`bad_request`).'),
            ...TOO_LARGE, ...GUARDED,
          },
        },
        get: {
          operationId: 'listKeys', summary: 'List keys created through this API (digests, never plain keys).',
          parameters: [{ name: 'customer', in: 'query', required: false, description: "Only this customer's keys; without it, every key.", schema: plain(CustomerId) }],
          responses: { 200: json('The keys.', 'KeyList'), ...GUARDED },
        },
      },
      '/admin/keys/{digest}': {
        delete: {
          operationId: 'revokeKey', summary: 'Revoke a key; every gateway sharing the store drops it from its cache.',
          parameters: [pathParam('digest', Digest)],
          responses: {
            204: { description: 'Revoked.' },
            400: error('Not 64 lower-case hex characters (`bad_request`).'),
            404: error('No such key (`not_found`).'),
            409: error('The key is defined in the config file (`conflict`).'),
            ...GUARDED,
          },
        },
      },
      '/admin/customers/{id}': {
        parameters: customerPath,
        get: {
          operationId: 'getCustomer', summary: "A customer's plan and limit overrides (config and store merged, store winning).",
          responses: { 200: json('The customer.', 'Customer'), ...BAD_ID, 404: error('No such customer (`not_found`).'), ...GUARDED },
        },
        put: {
          operationId: 'putCustomer',
          summary: "Set a customer's plan and overrides. Replaces what the store held for this customer: overrides not given are cleared.",
          requestBody: body('CustomerPut'),
          responses: { 200: json('Saved.', 'Customer'), 400: error('Bad id, field or value (`bad_request`).'), ...TOO_LARGE, ...GUARDED },
        },
      },
      '/admin/customers/{id}/usage': {
        parameters: customerPath,
        get: {
          operationId: 'getUsage', summary: "Today's and this month's requests, requests in flight, tokens left.",
          responses: { 200: json('The usage.', 'Usage'), ...BAD_ID, ...GUARDED },
        },
      },
    },
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } },
      schemas: Object.fromEntries(Object.entries(SCHEMAS).map(([name, s]) => [name, plain(s)])),
    },
  };
}

export const ADMIN_OPENAPI: Buffer = Buffer.from(JSON.stringify(build(), null, 2));
