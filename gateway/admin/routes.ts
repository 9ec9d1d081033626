import { auditRoute } from '../../common/admin/audit-route.js';
import { once, openApiRoute, type AdminRoute } from '../../common/admin/router.js';
import type { AdminDeps } from './admin-deps.js';
import { adminOpenApi } from './openapi.js';
import { getCustomer, getUsage, putCustomer } from './routes/customers.js';
import { healthz, metrics, readyz } from './routes/health.js';
import { createKey, listKeys, patchKey, revokeKey, rotateKey } from './routes/keys.js';
import { rewrapWebhookKeys } from './routes/webhook-keys.js';

// Every endpoint of the gateway's admin port, in the order the document lists them.
// A new endpoint: a route object in routes/, and one line here.

const document = once(() => Buffer.from(JSON.stringify(adminOpenApi(ADMIN_ROUTES), null, 2)));

export const ADMIN_ROUTES: readonly AdminRoute<AdminDeps>[] = [
  healthz,
  readyz,
  metrics,
  openApiRoute('/admin/openapi.json', document),
  createKey,
  listKeys,
  patchKey,
  rotateKey,
  revokeKey,
  getCustomer,
  putCustomer,
  getUsage,
  auditRoute<AdminDeps>(),
  rewrapWebhookKeys,
];

/** The document as served (for tests and the docs). */
export const adminOpenApiText = document;
