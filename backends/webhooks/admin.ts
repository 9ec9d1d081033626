// sluice-webhooks' admin listener (--admin-host/--admin-port, 127.0.0.1:9091 by default),
// on the same admin router as the gateway's (common/admin/router.ts): /healthz, /metrics
// and /admin/openapi.json are open (bind it to loopback or a private network); /admin/*
// wants `Authorization: Bearer <token>` (SLUICE_WEBHOOKS_ADMIN_TOKEN, audited as `admin`,
// and SLUICE_WEBHOOKS_ADMIN_TOKENS, `label=sha256hex` pairs) and is off without one.
//
//   GET    /admin/dead-letters[?endpoint=URL][&limit=N]  dead letters, newest first
//   POST   /admin/dead-letters/<webhook-id>/replay       one, back in the queue at once
//   DELETE /admin/dead-letters/<webhook-id>              one, dropped for good
//   POST   /admin/dead-letters/replay?endpoint=URL       all of one endpoint (and enables it)
//   GET    /admin/endpoints                              endpoints failing now, and disabled ones
//   GET    /admin/audit                                  admin changes (shared with the gateways on this Redis)
// A replayed delivery keeps its webhook-id and starts its retry schedule afresh. Every
// replay and deletion is in the audit log.

import { createServer, type Server } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { AuditLog } from '../../common/admin/audit-log.js';
import { AuditEntrySchema, AuditList, auditRoute } from '../../common/admin/audit-route.js';
import { adminRouter, once, openApiRoute, type AdminRoute } from '../../common/admin/router.js';
import type { AuthThrottle } from '../../common/admin/throttle.js';
import type { AdminTokens } from '../../common/admin/tokens.js';
import { ErrorEnvelope, HttpError } from '../../common/errors.js';
import { adminPaths, openApiDocument } from '../../common/openapi.js';
import type { EndpointHealth } from './endpoints.js';
import type { WebhookMetrics } from './metrics.js';
import type { WebhookJobData } from './queue.js';
import { origin } from './worker.js';

export interface AdminDeps {
  readonly queue: Queue<WebhookJobData>;
  readonly endpoints: EndpointHealth;
  readonly metrics: WebhookMetrics;
  readonly audit: AuditLog;
  readonly log: Logger;
}

export interface AdminOptions {
  /** Undefined: /admin/* answers 403. */
  readonly tokens: AdminTokens | undefined;
  readonly throttle: AuthThrottle;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
// Dead letters are read from Redis this many at a time when filtering by endpoint.
const PAGE = 500;
const WEBHOOK_ID = /^msg_[A-Za-z0-9_-]{22}$/;

const DeadLetter = Type.Object({
  id: Type.String(), url: Type.String(), attempts: Type.Integer(), error: Type.String(),
  enqueued_at: Type.String(), failed_at: Type.Union([Type.String(), Type.Null()]),
});
const SCHEMAS = {
  Error: ErrorEnvelope,
  Status: Type.Object({ status: Type.Literal('ok') }),
  DeadLetters: Type.Object({ dead_letters: Type.Array(DeadLetter) }),
  Replayed: Type.Object({ replayed: Type.Integer() }),
  Deleted: Type.Object({ deleted: Type.Integer() }),
  Endpoints: Type.Object({
    endpoints: Type.Array(Type.Object({
      url: Type.String(), failures: Type.Integer(), failing_since: Type.String(), last_error: Type.String(),
      disabled_at: Type.Union([Type.String(), Type.Null()]),
    })),
  }),
  AuditEntry: AuditEntrySchema,
  AuditList,
};
const ERROR = 'Error';
const idPath = { name: 'id', in: 'path' as const, schema: Type.String({ pattern: WEBHOOK_ID.source }) };
const endpointQuery = (required: boolean) => ({ name: 'endpoint', in: 'query' as const, required, schema: Type.String({ minLength: 1, maxLength: 2048 }), description: 'The exact webhook URL.' });

function endpointParam(q: URLSearchParams, required: boolean): string | undefined {
  const e = q.get('endpoint');
  if (e === null) {
    if (required) throw new HttpError(400, 'bad_request', 'endpoint=<webhook URL> is required', 'endpoint');
    return undefined;
  }
  if (e.length === 0 || e.length > 2048) throw new HttpError(400, 'bad_request', 'endpoint must be a webhook URL', 'endpoint');
  return e;
}

function limitParam(q: URLSearchParams): number {
  const l = q.get('limit');
  if (l === null) return DEFAULT_LIMIT;
  if (!/^\d{1,4}$/.test(l) || Number(l) < 1 || Number(l) > MAX_LIMIT) throw new HttpError(400, 'bad_request', `limit must be 1..${MAX_LIMIT}`, 'limit');
  return Number(l);
}

function webhookId(id: string): string {
  if (!WEBHOOK_ID.test(id)) throw new HttpError(400, 'bad_request', 'a webhook id looks like msg_ and 22 base64url characters');
  return id;
}

async function deadLetter(queue: Queue<WebhookJobData>, id: string): Promise<Job<WebhookJobData>> {
  const job = await queue.getJob(webhookId(id));
  if (job === undefined || !(await job.isFailed())) throw new HttpError(404, 'not_found', `no dead letter ${id}`);
  return job;
}

/** Every dead letter of one endpoint (exact URL), newest first. */
async function failedFor(queue: Queue<WebhookJobData>, endpoint: string): Promise<Job<WebhookJobData>[]> {
  const out: Job<WebhookJobData>[] = [];
  for (let start = 0; ; start += PAGE) {
    const page = await queue.getFailed(start, start + PAGE - 1);
    for (const j of page) if (j.data.url === endpoint) out.push(j as Job<WebhookJobData>);
    if (page.length < PAGE) return out;
  }
}

/** False when the job stopped being a dead letter meanwhile (replayed by someone else, or expired). */
async function replay(job: Job<WebhookJobData>): Promise<boolean> {
  try {
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return true;
  } catch {
    return false;
  }
}

function describe(j: Job<WebhookJobData>): Record<string, unknown> {
  return {
    id: j.id, url: j.data.url, attempts: j.attemptsMade, error: j.failedReason,
    enqueued_at: iso(j.timestamp), failed_at: j.finishedOn === undefined ? null : iso(j.finishedOn),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const healthz: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/healthz', open: true,
  doc: { operationId: 'healthz', summary: 'The process is up.', responses: { 200: { description: 'Up.', schema: 'Status' } } },
  handle: () => ({ status: 200, body: { status: 'ok' } }),
};

const metrics: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/metrics', open: true,
  doc: { operationId: 'metrics', summary: 'Prometheus metrics.', responses: { 200: { description: 'Prometheus text format.', content: { 'text/plain': { schema: { type: 'string' } } } } } },
  async handle(_c, d) {
    return { status: 200, raw: { contentType: d.metrics.registry.contentType, data: await d.metrics.registry.metrics() } };
  },
};

const listEndpoints: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/admin/endpoints',
  doc: { operationId: 'listEndpoints', summary: 'Endpoints failing now, and disabled ones.', responses: { 200: { description: 'The endpoints.', schema: 'Endpoints' } } },
  async handle(_c, d) {
    const eps = await d.endpoints.list();
    return {
      status: 200,
      body: {
        endpoints: eps.map((e) => ({
          url: e.url, failures: e.failures, failing_since: iso(e.failingSince), last_error: e.lastError,
          disabled_at: e.disabledAt === undefined ? null : iso(e.disabledAt),
        })),
      },
    };
  },
};

const listDeadLetters: AdminRoute<AdminDeps> = {
  method: 'GET', path: '/admin/dead-letters',
  doc: {
    operationId: 'listDeadLetters', summary: 'Dead letters, newest first.',
    parameters: [endpointQuery(false), { name: 'limit', in: 'query', schema: Type.Integer({ minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT }) }],
    responses: { 200: { description: 'The dead letters.', schema: 'DeadLetters' }, 400: { description: 'A bad endpoint or limit (`bad_request`).', schema: ERROR } },
  },
  async handle(call, d) {
    const endpoint = endpointParam(call.query, false);
    const limit = limitParam(call.query);
    const jobs = endpoint === undefined ? await d.queue.getFailed(0, limit - 1) : (await failedFor(d.queue, endpoint)).slice(0, limit);
    return { status: 200, body: { dead_letters: jobs.map((j) => describe(j as Job<WebhookJobData>)) } };
  },
};

const replayEndpoint: AdminRoute<AdminDeps> = {
  method: 'POST', path: '/admin/dead-letters/replay',
  doc: {
    operationId: 'replayEndpoint', summary: 'Replay every dead letter of one endpoint (and enable it again).', parameters: [endpointQuery(true)],
    responses: { 200: { description: 'How many went back in the queue.', schema: 'Replayed' }, 400: { description: 'No or bad endpoint (`bad_request`).', schema: ERROR } },
  },
  async handle(call, d) {
    const endpoint = endpointParam(call.query, true)!;
    await d.endpoints.enable(endpoint);
    let replayed = 0;
    for (const job of await failedFor(d.queue, endpoint)) if (await replay(job)) replayed++;
    // The URL may carry a customer's token: recorded by its origin only.
    await call.audit({ action: 'dead_letters.replay', target: origin(endpoint), details: { replayed } });
    d.log.info({ endpoint: origin(endpoint), replayed }, 'dead letters replayed');
    return { status: 200, body: { replayed } };
  },
};

const replayOne: AdminRoute<AdminDeps> = {
  method: 'POST', path: '/admin/dead-letters/{id}/replay',
  doc: {
    operationId: 'replayDeadLetter', summary: 'Put one dead letter back in the queue at once, with its webhook-id.', parameters: [idPath],
    responses: {
      200: { description: 'Replayed.', schema: 'Replayed' },
      400: { description: 'Not a webhook id (`bad_request`).', schema: ERROR },
      404: { description: 'No such dead letter (`not_found`).', schema: ERROR },
      409: { description: 'No longer a dead letter (`conflict`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const job = await deadLetter(d.queue, call.params.id!);
    await d.endpoints.enable(job.data.url);
    if (!(await replay(job))) throw new HttpError(409, 'conflict', `${job.id} is no longer a dead letter`);
    await call.audit({ action: 'dead_letter.replay', target: job.id!, details: { endpoint: origin(job.data.url) } });
    d.log.info({ webhook_id: job.id, endpoint: origin(job.data.url) }, 'dead letter replayed');
    return { status: 200, body: { replayed: 1 } };
  },
};

const deleteOne: AdminRoute<AdminDeps> = {
  method: 'DELETE', path: '/admin/dead-letters/{id}',
  doc: {
    operationId: 'deleteDeadLetter', summary: 'Drop one dead letter for good.', parameters: [idPath],
    responses: {
      200: { description: 'Deleted.', schema: 'Deleted' },
      400: { description: 'Not a webhook id (`bad_request`).', schema: ERROR },
      404: { description: 'No such dead letter (`not_found`).', schema: ERROR },
    },
  },
  async handle(call, d) {
    const job = await deadLetter(d.queue, call.params.id!);
    await job.remove();
    await call.audit({ action: 'dead_letter.delete', target: job.id!, details: { endpoint: origin(job.data.url) } });
    d.log.info({ webhook_id: job.id, endpoint: origin(job.data.url) }, 'dead letter deleted');
    return { status: 200, body: { deleted: 1 } };
  },
};

const GUARDED = {
  401: { description: 'No or wrong admin token (`unauthorized`).', schema: ERROR },
  403: { description: 'The admin API is disabled: no SLUICE_WEBHOOKS_ADMIN_TOKEN(S) (`forbidden`).', schema: ERROR },
  429: { description: 'Too many wrong tokens from this address: wait Retry-After seconds (`rate_limited`).', schema: ERROR, headers: { 'Retry-After': { schema: { type: 'integer' } } } },
};

const document = once(() => Buffer.from(JSON.stringify(webhooksAdminOpenApi(), null, 2)));

export const WEBHOOKS_ADMIN_ROUTES: readonly AdminRoute<AdminDeps>[] = [
  healthz,
  metrics,
  openApiRoute('/admin/openapi.json', document),
  listDeadLetters,
  replayEndpoint,
  replayOne,
  deleteOne,
  listEndpoints,
  auditRoute<AdminDeps>(),
];

export function webhooksAdminOpenApi(): Record<string, unknown> {
  return openApiDocument({
    title: 'sluice-webhooks admin API',
    version: '1',
    description: "sluice-webhooks' admin port (9091 by default). `/healthz`, `/metrics` and this document are open; `/admin/*` needs `Authorization: Bearer <token>`. "
      + 'Replays and deletions are recorded in the audit log under the label of the token used. Errors are `{"error":{"code","message","request_id","field"?}}`.',
    servers: ['http://127.0.0.1:9091'],
    securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } },
    security: [{ adminToken: [] }],
    paths: adminPaths(WEBHOOKS_ADMIN_ROUTES, GUARDED, { description: 'Body too large (`payload_too_large`).', schema: ERROR }),
    schemas: SCHEMAS,
  });
}

export function createWebhookAdmin(d: AdminDeps, o: AdminOptions): Server {
  return createServer(adminRouter<AdminDeps>({
    source: 'webhooks',
    routes: WEBHOOKS_ADMIN_ROUTES,
    deps: () => d,
    tokens: () => o.tokens,
    tokenHint: 'set SLUICE_WEBHOOKS_ADMIN_TOKEN or SLUICE_WEBHOOKS_ADMIN_TOKENS',
    throttle: o.throttle,
    audit: () => d.audit,
    log: d.log,
  }));
}
