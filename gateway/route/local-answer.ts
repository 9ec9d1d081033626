import type { RouteConfig } from '../config/types.js';
import { writeError } from '../http/errors.js';
import { lingerClose } from '../../common/linger.js';
import { configuredCode, type ConfiguredCode, type ErrorCode } from '../../common/error-codes.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import { compileTemplate, type Template } from './template.js';

// nginx `return`: the route answers the request itself. A redirect (a status with a
// location), a body with its content type, or the standard JSON error envelope (with
// `error`, or for a status >= 400 given alone, the code its status has in the table).
// A relative location is sent as written (nginx makes it absolute with its own idea of
// scheme, host and port, which behind another proxy is the wrong one).

export type LocalAnswer = (ctx: RequestContext) => false;

type ReturnConfig = NonNullable<RouteConfig['return']>;

export const REDIRECT_STATUSES: readonly number[] = [301, 302, 303, 307, 308];

/** The code a status answered alone gets in the error envelope (common/error-codes.ts). */
const CODE_OF_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 405: 'method_not_allowed', 408: 'request_timeout',
  410: 'gone', 413: 'payload_too_large', 415: 'unsupported_media_type', 429: 'rate_limited', 500: 'internal_error',
  501: 'not_implemented', 502: 'bad_gateway', 503: 'unavailable', 504: 'upstream_timeout',
};

export function errorCodeOf(status: number): ErrorCode | ConfiguredCode {
  return CODE_OF_STATUS[status] ?? configuredCode(`http_${status}`);
}

const t = (text: string, mode: 'text' | 'header' | 'uri'): Template => compileTemplate(text, mode) as Template;

export function compileReturn(ret: ReturnConfig): LocalAnswer {
  const status = ret.status;
  const headers = Object.entries(ret.headers ?? {}).map(([name, value]) => [name.toLowerCase(), t(value, 'header')] as const);
  const location = ret.location === undefined ? undefined : t(ret.location, 'uri');
  const error = ret.error !== undefined
    ? { code: configuredCode(ret.error.code), message: t(ret.error.message, 'text') }
    : ret.body === undefined && location === undefined && status >= 400 ? { code: errorCodeOf(status), message: undefined } : undefined;
  const body = ret.body === undefined ? undefined : t(ret.body, 'text');
  const contentType = ret.content_type ?? 'text/plain; charset=utf-8';

  return (ctx) => {
    const res = ctx.res;
    const extra: string[] = [];
    for (const [name, value] of headers) extra.push(name, value.render(ctx));
    if (location !== undefined) extra.push('location', location.render(ctx));
    if (error !== undefined) {
      ctx.errorCode = error.code;
      ctx.bytesOut += writeError(res, status, error.code, error.message?.render(ctx) ?? `answered ${status} by route ${ctx.route!.name}`, ctx.requestId, extra);
      return false;
    }
    lingerClose(res);
    const text = body?.render(ctx) ?? '';
    const bytes = Buffer.byteLength(text);
    const head = ['x-request-id', ctx.requestId, ...extra];
    if (body !== undefined) head.push('content-type', contentType);
    head.push('content-length', String(bytes));
    res.writeHead(status, head);
    res.end(text);
    ctx.bytesOut += ctx.req.method === 'HEAD' ? 0 : bytes;
    return false;
  };
}

/** return: a route with a local answer gives it. */
export function returnStage(): Stage {
  return (ctx) => {
    const answer = ctx.compiledRoute!.answer;
    return answer === undefined ? true : answer(ctx);
  };
}

/** Why a return cannot be used, or undefined. */
export function returnProblem(ret: Partial<ReturnConfig>): string | undefined {
  const redirect = ret.status !== undefined && REDIRECT_STATUSES.includes(ret.status);
  if (ret.location !== undefined && !redirect) return `location needs a redirect status (${REDIRECT_STATUSES.join(', ')}), got ${ret.status}`;
  if (redirect && ret.location === undefined && ret.body === undefined) return `status ${ret.status} needs a location`;
  if (ret.error !== undefined && (ret.body !== undefined || ret.location !== undefined)) return 'error is the whole answer: give it without body or location';
  if (ret.error !== undefined && ret.status !== undefined && ret.status < 400) return `error needs a status >= 400, got ${ret.status}`;
  if (ret.content_type !== undefined && ret.body === undefined) return 'content_type needs a body';
  return undefined;
}
