// How the image service answers: every response, success or error, goes out through
// finish (the load header, the connection rule for unread bodies, HEAD), every failure
// through fail (one mapping from what was thrown to the error envelope).
import { HttpError, errorBody } from '../../common/errors.js';
import { lingerClose } from '../../common/linger.js';
import type { Exchange, ServiceContext } from './context.js';
import { ClientGone, asHttpError } from './http.js';
import { PoolWaitTimeout } from './pool.js';

export function finish(ctx: ServiceContext, ex: Exchange, status: number, headers: Record<string, string>, body: Buffer | string): void {
  const { req, res } = ex;
  if (res.headersSent || res.destroyed) return;
  res.setHeader('x-backend-load', ctx.pool.header());
  // An unread body must not be parsed as the next request, and closing at once would
  // reset the connection under the answer (the gateway would see 502, not this status):
  // the rest is read and dropped, for LINGER_MS at most, and the connection then ends
  // (nothing to do when the body is all in).
  lingerClose(res);
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function overloaded(ctx: ServiceContext): HttpError {
  return new HttpError(503, 'overloaded', 'the backend is at capacity; retry later', undefined, { 'retry-after': ctx.retryAfter });
}

/**
 * What the client sees of `err`. `process`: thrown by the image work, where anything the
 * processor did not map came from a decoder choking on input, which is the client's
 * image (422), not our failure; `internal`: ours (500).
 */
export function clientError(ctx: ServiceContext, rid: string, err: unknown, context: 'process' | 'internal'): HttpError {
  const e = asHttpError(err);
  if (e !== undefined) return e;
  if (err instanceof PoolWaitTimeout) { ctx.metrics.rejected.inc(); return overloaded(ctx); }
  if (context === 'process') {
    ctx.log.warn({ err, request_id: rid }, 'unmapped processing error');
    return new HttpError(422, 'unprocessable_image', 'the image could not be processed');
  }
  ctx.log.error({ err, request_id: rid }, 'internal error');
  return new HttpError(500, 'internal_error', 'internal error');
}

export function fail(ctx: ServiceContext, ex: Exchange, err: unknown, context: 'process' | 'internal'): void {
  if (err instanceof ClientGone) return;
  const e = clientError(ctx, ex.rid, err, context);
  finish(ctx, ex, e.status, { ...e.headers, 'content-type': 'application/json' }, errorBody(e, ex.rid));
}
