import { ErrorEnvelope } from '../../common/errors.js';
import { AuditEntrySchema, AuditList } from '../../common/admin/audit-route.js';
import type { AdminRoute } from '../../common/admin/router.js';
import { adminPaths, openApiDocument } from '../../common/openapi.js';
import type { AdminDeps } from './admin-deps.js';
import {
  Customer, CustomerPut, Key, KeyCreate, KeyCreated, KeyList, KeyPatch, KeyRotate, KeyRotated, Readiness, Rewrapped, Status, Usage,
} from './admin-schemas.js';

// The gateway admin API's OpenAPI 3.1 document, built from the route table (routes.ts) and
// the schemas the routes validate with, so the two cannot drift; served at /admin/openapi.json.

const SCHEMAS = {
  Error: ErrorEnvelope, Status, Readiness, KeyCreate, KeyCreated, KeyPatch, KeyRotate, KeyRotated, Key, KeyList, CustomerPut, Customer, Usage,
  AuditEntry: AuditEntrySchema, AuditList, Rewrapped,
};

export const GUARDED = {
  401: { description: 'No or wrong admin token (`unauthorized`).', schema: 'Error' },
  403: { description: 'The admin API is disabled: neither `admin.token_digest` nor `admin.tokens` is set (`forbidden`).', schema: 'Error' },
  429: {
    description: 'Too many wrong tokens from this address (`admin.auth_failures`): wait Retry-After seconds (`rate_limited`). The token was not checked.',
    schema: 'Error', headers: { 'Retry-After': { schema: { type: 'integer' } } },
  },
} as const;

export function adminOpenApi(routes: readonly AdminRoute<AdminDeps>[]): Record<string, unknown> {
  return openApiDocument({
    title: 'Sluice admin API',
    version: '1',
    description: "The gateway's admin port (9090 by default). `/healthz`, `/readyz`, `/metrics` and this document are open; everything else under `/admin/` needs "
      + '`Authorization: Bearer <admin token>` (the config holds only SHA-256 digests: `admin.token_digest`, and `admin.tokens` with a label each). '
      + 'Every change is recorded in the audit log (`GET /admin/audit`) under the label of the token used. '
      + 'Errors are `{"error":{"code","message","request_id"}}`; a `bad_request` message lists every problem, each naming its field. `sluice admin` is the command-line client.',
    servers: ['http://127.0.0.1:9090'],
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } },
    security: [{ adminToken: [] }],
    paths: adminPaths(routes, GUARDED, { description: 'Body over 64 KiB (`payload_too_large`).', schema: 'Error' }),
    schemas: SCHEMAS,
  });
}
