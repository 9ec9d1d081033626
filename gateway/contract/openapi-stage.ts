import { once } from '../../common/admin/router.js';
import { sendError } from '../http/errors.js';
import type { Stage } from '../pipeline/context.js';
import { publicOpenApi } from './public-openapi.js';

export const OPENAPI_PATH = '/v1/openapi.json';

/** Built on the first request, then served as is. */
const document = once(() => Buffer.from(JSON.stringify(publicOpenApi(), null, 2)));

/**
 * `GET /v1/openapi.json`: the public contract, before routing and auth, with no credential
 * and no limit (a precomputed buffer costs what a 401 would).
 */
export function openApiStage(): Stage {
  return (ctx) => {
    if (ctx.path !== OPENAPI_PATH) return true;
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') return sendError(ctx, 405, 'method_not_allowed', 'use GET', ['allow', 'GET, HEAD']);
    const body = document();
    ctx.bytesOut += body.length;
    ctx.res.writeHead(200, [
      'content-type', 'application/json; charset=utf-8',
      'content-length', String(body.length),
      'cache-control', 'public, max-age=300',
      'x-request-id', ctx.requestId,
    ]);
    ctx.res.end(method === 'HEAD' ? undefined : body);
    return false;
  };
}
