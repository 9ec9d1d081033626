import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { BillingConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { Store, StoredResponse } from '../store/types.js';
import type { CreditMetrics } from './credit-metrics.js';

// Idempotent POSTs, after draft-ietf-httpapi-idempotency-key-header-06 (the IETF httpapi
// working group's Idempotency-Key header field, February 2025):
//   - the key is the client's (an sf-string, §2.1; a bare token is taken too, as Stripe's
//     clients send it), scoped here to the customer, kept ttl_s (24 h by default, §2.3);
//   - the fingerprint is a SHA-256 of the method, target, Content-Type, X-Options and
//     body (§2.4), so a key reused for another request is told apart;
//   - a repeat of a finished request gets its response again (status, body, headers
//     such as the result's Content-Location), marked Idempotent-Replayed, and is not
//     charged: it is answered before the limits (§2.6);
//   - a repeat while the first is still running gets 409, a key reused with another
//     payload 422 (§2.7).
// The claim and the kept response live in the store (Redis for a fleet: any gateway
// answers a repeat, after a restart too). A response failed by Sluice or a backend
// (billing.refund_statuses) is not kept, and neither is an answer of the gateway's own
// (a 429 from the limits, a 413): the claim is given up and a retry runs again.

/** Response headers a replay repeats; the rest (dates, load, timing) belonged to the first answer. */
const KEPT_HEADERS = new Set(['content-type', 'content-location', 'location', 'x-image-result', 'cache-control', 'vary', 'x-content-type-options']);

const KEY = /^[\x21-\x7e]{1,255}$/;

/** Where claims keep their responses: one per generation. */
export interface Keeper {
  readonly store: Store;
  readonly ttlMs: number;
  /** Statuses that are refunded, and so not kept: a retry runs again. */
  readonly refunds: ReadonlySet<number>;
  readonly maxBytes: number;
  readonly log: Logger;
}

/** The claim a request holds while it runs, and what its response looked like. */
export class IdempotencyClaim {
  status = 0;
  headers: string[] = [];
  private chunks: Buffer[] | undefined = [];
  private bytes = 0;
  /** The response ended and was kept (or the claim given up): nothing is left to do when the request closes. */
  settled = false;

  constructor(readonly customer: string, readonly key: string, readonly token: string, private readonly keeper: Keeper) {}

  /** The proxied response's head (called by the proxy stage). */
  start(status: number, upstream: IncomingHttpHeaders): void {
    this.status = status;
    for (const name in upstream) {
      const v = upstream[name];
      if (KEPT_HEADERS.has(name) && typeof v === 'string') this.headers.push(name, v);
    }
  }

  data(chunk: Buffer): void {
    if (this.chunks === undefined) return;
    this.bytes += chunk.length;
    if (this.bytes > this.keeper.maxBytes) this.chunks = undefined;
    else this.chunks.push(chunk);
  }

  /**
   * The proxied response is whole: keep it (or give the claim up) before the client sees
   * its end, so a repeat sent the moment the client has it finds it kept.
   */
  end(): Promise<void> {
    this.settled = true;
    const k = this.keeper;
    const kept = k.refunds.has(this.status) ? undefined : this.response();
    const done = kept !== undefined
      ? k.store.idempotencyFinish(this.customer, this.key, this.token, kept, k.ttlMs)
      : k.store.idempotencyAbandon(this.customer, this.key, this.token);
    return done.catch((err: unknown) => k.log.warn({ customer: this.customer, err: (err as Error).message }, 'idempotent response not kept; a repeat will run again once its lock expires'));
  }

  /** The request closed without a whole proxied response (an answer of the gateway's own, a client that left): a retry runs again. */
  abandon(): void {
    if (this.settled) return;
    this.settled = true;
    this.keeper.store.idempotencyAbandon(this.customer, this.key, this.token)
      .catch((err: unknown) => this.keeper.log.warn({ customer: this.customer, err: (err as Error).message }, 'idempotency claim not given up; it expires with its lock'));
  }

  /** What a repeat gets; undefined when the body was too large to keep and there is no result URL to send the repeat to instead. */
  response(): StoredResponse | undefined {
    if (this.chunks !== undefined) return { status: this.status, headers: this.headers, body: Buffer.concat(this.chunks) };
    return this.headers.includes('content-location') ? { status: this.status, headers: this.headers, body: undefined } : undefined;
  }
}

/** The Idempotency-Key's value: an sf-string's content, or the bare text; undefined when malformed. */
export function parseKey(v: string): string | undefined {
  const s = v.trim();
  const m = /^"((?:[^"\\]|\\["\\])*)"$/.exec(s);
  if (m === null && s.startsWith('"')) return undefined;
  const key = m === null ? s : m[1]!.replace(/\\(["\\])/g, '$1');
  return KEY.test(key) ? key : undefined;
}

/**
 * Runs after auth (the key is the customer's) and before the limits (a replay is not
 * charged). A request with a key is read whole first, to fingerprint it; it is then
 * forwarded from that copy (ctx.body).
 */
export function idempotencyStage(keeper: Keeper, cfg: BillingConfig['idempotency'], lockMs: number, metrics: CreditMetrics): Stage {
  const paths = new Set(cfg.paths);
  const store = keeper.store;
  return (ctx) => {
    if (!cfg.enabled || ctx.identity === undefined || ctx.req.method !== 'POST' || !paths.has(ctx.path)) return true;
    const header = ctx.req.headers['idempotency-key'];
    if (header === undefined) return true;
    const key = parseKey(Array.isArray(header) ? header.join(', ') : header);
    if (key === undefined) {
      return sendError(ctx, 400, 'bad_request', 'Idempotency-Key must be 1-255 visible ASCII characters, as a quoted string ("...") or bare');
    }
    const limit = Math.min(cfg.max_request_bytes, ctx.route?.max_body_bytes ?? ctx.identity.maxBodyBytes, ctx.identity.maxBodyBytes);
    return readWhole(ctx, limit).then((body) => {
      if (body === undefined) return sendError(ctx, 413, 'payload_too_large', `a request with an Idempotency-Key is read whole first; its body may be at most ${limit} bytes`);
      ctx.body = body;
      const token = randomBytes(12).toString('base64url');
      return store.idempotencyBegin(ctx.identity!.customer, key, fingerprint(ctx, body), token, lockMs).then((state) => {
        switch (state.kind) {
          case 'new':
            metrics.idempotency.inc({ result: 'new' });
            ctx.idempotency = new IdempotencyClaim(ctx.identity!.customer, key, token, keeper);
            return true;
          case 'running':
            metrics.idempotency.inc({ result: 'in_progress' });
            return sendError(ctx, 409, 'idempotency_in_progress', 'a request with this Idempotency-Key is still being processed; retry when it has finished', ['retry-after', '1']);
          case 'mismatch':
            metrics.idempotency.inc({ result: 'mismatch' });
            return sendError(ctx, 422, 'idempotency_key_reused', 'this Idempotency-Key was used for a different request (method, path, Content-Type, X-Options or body); use a new key');
          case 'done':
            metrics.idempotency.inc({ result: state.response.body === undefined ? 'too_large' : 'replayed' });
            return replay(ctx, state.response);
        }
      }, () => {
        metrics.idempotency.inc({ result: 'store_error' });
        return sendError(ctx, 503, 'unavailable', 'the idempotency store did not answer; retry later with the same key', ['retry-after', '1']);
      });
    });
  };
}

function fingerprint(ctx: RequestContext, body: Buffer): string {
  const h = ctx.req.headers;
  return createHash('sha256')
    .update(`${ctx.req.method}\0${ctx.req.url}\0${h['content-type'] ?? ''}\0${String(h['x-options'] ?? '')}\0`)
    .update(body)
    .digest('base64url');
}

/** The kept response, or, for a body too large to keep, 303 See Other to its result. */
function replay(ctx: RequestContext, r: StoredResponse): false {
  ctx.replayed = true;
  const res = ctx.res;
  if (r.body === undefined) {
    // Kept without its body only when it names its result (IdempotencyClaim.response).
    const location = r.headers[r.headers.indexOf('content-location') + 1]!;
    res.writeHead(303, ['location', location, 'content-length', '0', 'idempotent-replayed', 'true', 'x-request-id', ctx.requestId]);
    res.end();
    return false;
  }
  ctx.bytesOut += r.body.length;
  res.writeHead(r.status, [...r.headers, 'content-length', String(r.body.length), 'idempotent-replayed', 'true', 'x-request-id', ctx.requestId]);
  res.end(r.body);
  return false;
}

/** The whole body, or undefined once it passes `limit` (the rest is then left to the error answer's lingering close). */
function readWhole(ctx: RequestContext, limit: number): Promise<Buffer | undefined> {
  const req = ctx.req;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) return Promise.resolve(undefined);
  const expect = req.headers.expect;
  if (expect !== undefined && /(^|,)\s*100-continue\s*(,|$)/i.test(expect)) ctx.res.writeContinue();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      ctx.bytesIn += chunk.length;
      if (size > limit) { done(undefined); return; }
      chunks.push(chunk);
    };
    const done = (v: Buffer | undefined): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onEnd);
      if (v === undefined) req.pause();
      resolve(v);
    };
    // A client that left mid-body gets nothing: undefined answers into a closed response.
    const onEnd = (): void => done(req.complete ? Buffer.concat(chunks) : undefined);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onEnd);
    req.once('close', onEnd);
  });
}
