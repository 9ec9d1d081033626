// sluice-webhooks' admin listener (--admin-host/--admin-port, 127.0.0.1:9091 by default).
// /healthz and /metrics are open (bind it to loopback or a private network); /admin/*
// wants `Authorization: Bearer <SLUICE_WEBHOOKS_ADMIN_TOKEN>` and is off without it.
//
//   GET  /admin/dead-letters[?endpoint=URL][&limit=N]  dead letters, newest first
//   POST /admin/dead-letters/<webhook-id>/replay       one, back in the queue at once
//   POST /admin/dead-letters/replay?endpoint=URL       all of one endpoint (and enables it)
//   GET  /admin/endpoints                              endpoints failing now, and disabled ones
// A replayed delivery keeps its webhook-id and starts its retry schedule afresh.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { digestsEqual } from '../../common/digest.js';
import { HttpError, errorBody } from '../../common/errors.js';
import { requestIdFrom } from '../../common/request-id.js';
import { sendJson } from '../service/http.js';
import type { EndpointHealth } from './endpoints.js';
import type { WebhookMetrics } from './metrics.js';
import type { WebhookJobData } from '../net/webhook-queue.js';
import { origin } from './worker.js';

export interface AdminDeps {
  readonly queue: Queue<WebhookJobData>;
  readonly endpoints: EndpointHealth;
  readonly metrics: WebhookMetrics;
  /** Undefined: /admin/* answers 403. */
  readonly token: string | undefined;
  readonly log: Logger;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
// Dead letters are read from Redis this many at a time when filtering by endpoint.
const PAGE = 500;
const WEBHOOK_ID = /^msg_[A-Za-z0-9_-]{22}$/;

export function createWebhookAdmin(d: AdminDeps): Server {
  const want = d.token === undefined ? undefined : sha256(d.token);
  return createServer((req, res) => {
    const rid = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', rid);
    handle(d, want, req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'admin request failed');
      if (!(err instanceof HttpError)) d.log.error({ err: (err as Error).message, request_id: rid }, 'admin request failed');
      sendJson(res, e.status, errorBody(e, rid), e.headers);
    });
  });
}

async function handle(d: AdminDeps, want: string | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname;
  const m = req.method ?? 'GET';
  req.resume();
  if (m === 'GET' && path === '/healthz') return sendJson(res, 200, { status: 'ok' });
  if (m === 'GET' && path === '/metrics') {
    const body = await d.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': d.metrics.registry.contentType });
    res.end(body);
    return;
  }
  if (!path.startsWith('/admin/')) throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
  authorize(want, req);
  const parts = path.split('/').filter((s) => s !== '').slice(1);
  if (parts[0] === 'endpoints' && parts.length === 1) {
    allow(m, 'GET');
    const eps = await d.endpoints.list();
    return sendJson(res, 200, {
      endpoints: eps.map((e) => ({
        url: e.url, failures: e.failures, failing_since: iso(e.failingSince), last_error: e.lastError,
        disabled_at: e.disabledAt === undefined ? null : iso(e.disabledAt),
      })),
    });
  }
  if (parts[0] !== 'dead-letters') throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
  if (parts.length === 1) {
    allow(m, 'GET');
    const endpoint = endpointParam(url, false);
    const limit = limitParam(url);
    const jobs = endpoint === undefined ? await d.queue.getFailed(0, limit - 1) : (await failedFor(d.queue, endpoint)).slice(0, limit);
    return sendJson(res, 200, { dead_letters: jobs.map(describe) });
  }
  if (parts.length === 2 && parts[1] === 'replay') {
    allow(m, 'POST');
    const endpoint = endpointParam(url, true)!;
    await d.endpoints.enable(endpoint);
    const jobs = await failedFor(d.queue, endpoint);
    let replayed = 0;
    for (const job of jobs) if (await replay(job)) replayed++;
    d.log.info({ endpoint: origin(endpoint), replayed }, 'dead letters replayed');
    return sendJson(res, 200, { replayed });
  }
  if (parts.length === 3 && parts[2] === 'replay') {
    allow(m, 'POST');
    const id = parts[1]!;
    if (!WEBHOOK_ID.test(id)) throw new HttpError(400, 'bad_request', 'a webhook id looks like msg_ and 22 base64url characters');
    const job = await d.queue.getJob(id);
    if (job === undefined || !(await job.isFailed())) throw new HttpError(404, 'not_found', `no dead letter ${id}`);
    await d.endpoints.enable(job.data.url);
    if (!(await replay(job))) throw new HttpError(409, 'conflict', `${id} is no longer a dead letter`);
    d.log.info({ webhook_id: id, endpoint: origin(job.data.url) }, 'dead letter replayed');
    return sendJson(res, 200, { replayed: 1 });
  }
  throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
}

function authorize(want: string | undefined, req: IncomingMessage): void {
  if (want === undefined) throw new HttpError(403, 'forbidden', 'admin API disabled: set SLUICE_WEBHOOKS_ADMIN_TOKEN');
  const m = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (m === null || !digestsEqual(sha256(m[1]!), want)) {
    throw new HttpError(401, 'unauthorized', 'admin API needs Authorization: Bearer <SLUICE_WEBHOOKS_ADMIN_TOKEN>');
  }
}

function allow(method: string, allowed: string): void {
  if (method !== allowed) throw new HttpError(405, 'method_not_allowed', `use ${allowed}`, undefined, { allow: allowed });
}

function endpointParam(url: URL, required: boolean): string | undefined {
  const e = url.searchParams.get('endpoint');
  if (e === null) {
    if (required) throw new HttpError(400, 'bad_request', 'endpoint=<webhook URL> is required', 'endpoint');
    return undefined;
  }
  if (e.length === 0 || e.length > 2048) throw new HttpError(400, 'bad_request', 'endpoint must be a webhook URL', 'endpoint');
  return e;
}

function limitParam(url: URL): number {
  const l = url.searchParams.get('limit');
  if (l === null) return DEFAULT_LIMIT;
  if (!/^\d{1,4}$/.test(l) || Number(l) < 1 || Number(l) > MAX_LIMIT) throw new HttpError(400, 'bad_request', `limit must be 1..${MAX_LIMIT}`, 'limit');
  return Number(l);
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

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
