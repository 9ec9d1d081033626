import type { ServerResponse } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';
import { lingerClose } from '../../common/linger.js';
import type { ConfiguredCode, ErrorCode, StatusAndCode } from '../../common/error-codes.js';
import { errorBody, type HttpError } from '../../common/errors.js';

/**
 * Answer a request with the JSON error body; safe to call once headers are gone (it then
 * just ends). The status and code are a pair from common/error-codes.ts.
 */
export function sendError(ctx: RequestContext, ...[status, code, message, extra = []]: [...StatusAndCode, message: string, extra?: readonly string[]]): false {
  return answer(ctx, status, code, message, extra);
}

/** Answer with an HttpError something threw (its status and code are a pair of the table, its headers go too). */
export function sendHttpError(ctx: RequestContext, e: HttpError): false {
  return answer(ctx, e.status, e.code, e.message, Object.entries(e.headers).flat());
}

function answer(ctx: RequestContext, status: number, code: ErrorCode, message: string, extra: readonly string[]): false {
  ctx.errorCode = code;
  // Added, not assigned: when the response had already started, what went out still counts.
  ctx.bytesOut += writeError(ctx.res, status, code, message, ctx.requestId, [...ctx.limitHeaders, ...extra]);
  return false;
}

/** Returns the body's size in bytes (0 when it was too late to send one). */
export function writeError(res: ServerResponse, status: number, code: ErrorCode | ConfiguredCode, message: string, requestId: string, extra: readonly string[] = []): number {
  if (res.headersSent) {
    // Too late for a clean error: cut the connection so the client sees a broken body, not a short one.
    res.destroy();
    return 0;
  }
  // Answering before the request body was read to its end: the unread rest is still on
  // its way over this connection, so it cannot carry another request; close it gently.
  lingerClose(res);
  const body = errorBody({ code, message }, requestId);
  const headers = [
    'content-type', 'application/json; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'cache-control', 'no-store',
    'x-request-id', requestId,
    ...extra,
  ];
  if (status === 401) headers.push('www-authenticate', 'Bearer realm="sluice"');
  res.writeHead(status, headers);
  res.end(body);
  return Buffer.byteLength(body);
}
