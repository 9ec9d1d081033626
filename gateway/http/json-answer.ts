import type { RequestContext } from '../pipeline/context.js';

/** Answers a request the gateway serves itself with JSON (and the headers every answer carries); no body for HEAD. */
export function answerJson(ctx: RequestContext, status: number, body: unknown): false {
  const text = JSON.stringify(body);
  const size = Buffer.byteLength(text);
  ctx.bytesOut += size;
  ctx.res.writeHead(status, [
    'content-type', 'application/json; charset=utf-8',
    'content-length', String(size),
    'cache-control', 'no-store',
    'x-request-id', ctx.requestId,
    ...ctx.limitHeaders,
  ]);
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : text);
  return false;
}
