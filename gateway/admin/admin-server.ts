import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { digestsEqual } from '../../common/digest.js';
import { errorBody, HttpError } from '../../common/errors.js';
import { keyDigest } from '../auth/digest.js';
import type { SluiceConfig } from '../config/types.js';
import { requestIdFrom } from '../../common/request-id.js';
import type { Metrics } from '../observe/metrics.js';
import type { Invalidation, Store } from '../store/types.js';
import { schemaChecker, type Checked } from '../../common/schema-check.js';
import { CustomerId, CustomerPut, Digest, KeyCreate } from './admin-schemas.js';
import { usageDay, usageRange } from '../credits/usage-report.js';
import { checkWebhookUrl } from '../credits/webhook-url.js';
import { isoDate } from '../store/calendar.js';
import { ADMIN_OPENAPI } from './openapi.js';

const ID = new RegExp(CustomerId.pattern!);
const DIGEST = new RegExp(Digest.pattern!);
const MAX_ADMIN_BODY = 64 * 1024;
const checkKeyCreate = schemaChecker(KeyCreate);
const checkCustomerPut = schemaChecker(CustomerPut);

export interface AdminDeps {
  readonly cfg: SluiceConfig;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Resolves when the store answers; /readyz waits for it at most store.timeout_ms × 4. */
  readonly storeReady: () => Promise<void>;
  /**
   * Drops this process's cached identities. The published invalidation reaches this
   * process too, but only after the admin answer may have gone out; applying it here
   * first makes "the next request" on this gateway see the change.
   */
  readonly invalidate?: (msg: Invalidation) => void;
}

/**
 * The operator's side door on 9090: health, readiness and metrics in the open (bind it
 * to loopback or a private network), the key and customer API behind a bearer token
 * whose SHA-256 is in the config.
 */
export function createAdminServer(deps: AdminDeps): Server {
  return createServer((req, res) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    handle(deps, req, res).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'admin request failed');
      if (!(err instanceof HttpError)) deps.log.error({ err: (err as Error).message, request_id: requestId }, 'admin request failed');
      sendJsonText(res, e.status, errorBody(e, requestId));
    });
  });
}

async function handle(d: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin');
  const path = url.pathname;
  const m = req.method ?? 'GET';
  // The pid lets a load tester on the same host read the gateway's CPU from /proc.
  if (m === 'GET' && path === '/healthz') return json(res, 200, { status: 'ok', pid: process.pid });
  if (m === 'GET' && path === '/readyz') return readyz(d, res);
  if (m === 'GET' && path === '/metrics') {
    const body = await d.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': d.metrics.registry.contentType });
    res.end(body);
    return;
  }
  if (m === 'GET' && path === '/admin/openapi.json') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': ADMIN_OPENAPI.length });
    res.end(ADMIN_OPENAPI);
    return;
  }
  if (!path.startsWith('/admin/')) throw new HttpError(404, 'not_found', `no admin endpoint ${path}`);
  authorize(d.cfg, req);

  const parts = path.split('/').filter((s) => s !== '').slice(1).map(decodePart);
  if (parts[0] === 'keys') {
    if (parts.length === 1 && m === 'POST') return createKey(d, req, res);
    if (parts.length === 1 && m === 'GET') {
      const customer = url.searchParams.get('customer') ?? undefined;
      const keys = await d.store.listKeys(customer);
      return json(res, 200, { keys: keys.map((k) => ({ digest: k.digest, customer: k.customer, plan: k.plan, label: k.label, created_at: k.createdAt })) });
    }
    if (parts.length === 2 && m === 'DELETE') return revokeKey(d, parts[1]!, res);
  }
  if (parts[0] === 'usage' && parts.length === 1 && m === 'GET') return usageHistory(d, url, res);
  if (parts[0] === 'customers' && parts.length >= 2) {
    const id = parts[1]!;
    if (!ID.test(id)) throw new HttpError(400, 'bad_request', 'customer id must be 1-128 of A-Z a-z 0-9 . _ : @ -');
    if (parts.length === 2 && m === 'PUT') return putCustomer(d, id, req, res);
    if (parts.length === 2 && m === 'GET') {
      const rec = await d.store.findCustomer(id);
      const fromConfig = d.cfg.customers.get(id);
      if (rec === undefined && fromConfig === undefined) throw new HttpError(404, 'not_found', `no customer ${id}`);
      const webhookUrl = rec?.webhookUrl ?? fromConfig?.webhook_url;
      return json(res, 200, {
        id, plan: rec?.plan ?? fromConfig?.plan, overrides: { ...fromConfig?.overrides, ...rec?.overrides }, ...(webhookUrl === undefined ? {} : { webhook_url: webhookUrl }),
      });
    }
    if (parts.length === 3 && parts[2] === 'usage' && m === 'GET') {
      const u = await d.store.usage(id);
      return json(res, 200, { customer: id, day_used: u.dayUsed, month_used: u.monthUsed, inflight: u.inflight, tokens: u.tokens });
    }
  }
  throw new HttpError(404, 'not_found', `no admin endpoint ${m} ${path}`);
}

function authorize(cfg: SluiceConfig, req: IncomingMessage): void {
  const want = cfg.admin.token_digest;
  if (want === undefined) throw new HttpError(403, 'forbidden', 'admin API disabled: set admin.token_digest');
  const m = /^bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (m === null || !digestsEqual(createHash('sha256').update(m[1]!).digest('hex'), want)) {
    throw new HttpError(401, 'unauthorized', 'admin API needs Authorization: Bearer <admin token>');
  }
}

async function createKey(d: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { customer, plan, label } = await readBody(req, checkKeyCreate);
  if (plan !== undefined && !d.cfg.plans.has(plan)) throw new HttpError(400, 'bad_request', `plan: unknown plan ${plan}`);
  // A key whose customer has no plan either would be refused on every request: say so now.
  if (plan === undefined && (d.cfg.customers.get(customer)?.plan ?? (await d.store.findCustomer(customer))?.plan) === undefined) {
    throw new HttpError(400, 'bad_request', `plan: required, customer ${customer} has no plan (pass plan, or PUT /admin/customers/${customer} with one first)`);
  }
  const key = `sk_${randomBytes(24).toString('base64url')}`;
  const digest = keyDigest(key, d.cfg.auth.pepper);
  await d.store.saveKey({ digest, customer, plan, label, createdAt: Date.now() });
  d.log.info({ customer, plan, digest: digest.slice(0, 12) }, 'api key created');
  // The plain key is shown once, here, and stored nowhere.
  json(res, 201, { key, digest, customer, plan, label });
}

async function revokeKey(d: AdminDeps, digest: string, res: ServerResponse): Promise<void> {
  if (!DIGEST.test(digest)) throw new HttpError(400, 'bad_request', 'key digest must be 64 lower-case hex characters');
  if (d.cfg.auth.keys.some((k) => k.digest === digest)) {
    throw new HttpError(409, 'conflict', 'this key is defined in the config file; remove it there');
  }
  const existed = await d.store.revokeKey(digest);
  if (!existed) throw new HttpError(404, 'not_found', 'no such key');
  await invalidateEverywhere(d, { kind: 'key', digest });
  d.log.info({ digest: digest.slice(0, 12) }, 'api key revoked');
  res.writeHead(204);
  res.end();
}

async function putCustomer(d: AdminDeps, id: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { plan, overrides, webhook_url: webhookUrl } = await readBody(req, checkCustomerPut);
  if (plan !== undefined && !d.cfg.plans.has(plan)) throw new HttpError(400, 'bad_request', `plan: unknown plan ${plan}`);
  const problem = webhookUrl === undefined ? undefined : await checkWebhookUrl(webhookUrl, d.cfg.billing.quota_warnings.allow);
  if (problem !== undefined) throw new HttpError(400, 'bad_request', `webhook_url: ${problem}`);
  await d.store.saveCustomer({ id, plan, overrides, webhookUrl });
  await invalidateEverywhere(d, { kind: 'customer', id });
  // The URL may carry the customer's token: logged by its origin only.
  d.log.info({ customer: id, plan, overrides, webhook: webhookUrl === undefined ? undefined : new URL(webhookUrl).origin }, 'customer updated');
  json(res, 200, { id, plan, overrides, ...(webhookUrl === undefined ? {} : { webhook_url: webhookUrl }) });
}

/** `GET /admin/usage?from=&to=[&customer=]`: daily usage for billing, of one customer or of every customer with any. */
async function usageHistory(d: AdminDeps, url: URL, res: ServerResponse): Promise<void> {
  const q = url.searchParams;
  const customer = q.get('customer') ?? undefined;
  if (customer !== undefined && !ID.test(customer)) throw new HttpError(400, 'bad_request', 'customer: must be 1-128 of A-Z a-z 0-9 . _ : @ -');
  const range = usageRange(q.get('from'), q.get('to'), d.cfg.billing.usage.retention_days);
  if (typeof range === 'string') throw new HttpError(400, 'bad_request', range);
  const rows = await d.store.readUsage(customer, range.fromDay, range.toDay);
  json(res, 200, { from: isoDate(range.fromDay), to: isoDate(range.toDay), unit: 'units', days: rows.map(usageDay) });
}

/** Here at once, then every other gateway through the store (after the store write, never before). */
async function invalidateEverywhere(d: AdminDeps, msg: Invalidation): Promise<void> {
  d.invalidate?.(msg);
  await d.store.publish(msg);
}

function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'bad_request', 'path: bad percent-encoding');
  }
}

async function readyz(d: AdminDeps, res: ServerResponse): Promise<void> {
  try {
    await d.storeReady();
    json(res, 200, { status: 'ready', store: d.cfg.store.kind });
  } catch (err) {
    json(res, 503, { status: 'not_ready', store: d.cfg.store.kind, error: (err as Error).message });
  }
}

/** The JSON body, checked by its schema (admin-schemas.ts): every problem in one 400, each naming its field. */
async function readBody<T>(req: IncomingMessage, check: (doc: unknown) => Checked<T>): Promise<T> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY) throw new HttpError(413, 'payload_too_large', `admin request body over ${MAX_ADMIN_BODY} bytes`);
    chunks.push(chunk);
  }
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'bad_request', 'body must be JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'bad_request', 'body must be a JSON object');
  const { value, errors } = check(v);
  if (errors.length > 0) throw new HttpError(400, 'bad_request', errors.join('; '));
  return value;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  sendJsonText(res, status, JSON.stringify(body));
}

function sendJsonText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
