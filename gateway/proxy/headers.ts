import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';

// Hop-by-hop (RFC 9110 §7.6.1) plus what the gateway itself sets or consumes.
// `expect` is answered by the gateway's own server, never forwarded.
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host', 'expect', 'x-request-id',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-api-key',
]);

const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'x-request-id',
  // What the backend did, for the gateway's settlement (common/work-report.ts): not the client's business.
  'x-sluice-work',
]);

/** Headers named in Connection are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === '' || s.toLowerCase() === 'keep-alive' || s.toLowerCase() === 'close') return undefined;
  return new Set(s.split(',').map((t) => t.trim().toLowerCase()));
}

/** The upstream request's headers as a flat [name, value, ...] list. */
export function upstreamRequestHeaders(ctx: RequestContext, trustForwarded: boolean): string[] {
  const req = ctx.req;
  const raw = req.rawHeaders;
  const extra = connectionTokens(req.headers.connection);
  const consumedAuth = ctx.identity !== undefined;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (DROP_REQUEST.has(name) || name.startsWith('x-sluice-')) continue;
    if (consumedAuth && name === 'authorization') continue;
    if (extra !== undefined && extra.has(name)) continue;
    out.push(name, raw[i + 1]!);
  }
  const peer = req.socket.remoteAddress ?? '';
  const prior = trustForwarded ? req.headers['x-forwarded-for'] : undefined;
  out.push(
    'x-request-id', ctx.requestId,
    'x-forwarded-for', typeof prior === 'string' && prior !== '' ? `${prior}, ${peer}` : peer,
    'x-forwarded-proto', 'http',
  );
  const host = req.headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  const id = ctx.identity;
  if (id !== undefined) out.push('x-sluice-customer', id.customer, 'x-sluice-plan', id.plan.name);
  return out;
}

/** The client response's headers: the upstream's minus hop-by-hop, plus ours. */
export function clientResponseHeaders(ctx: RequestContext, upstream: IncomingHttpHeaders): string[] {
  const extra = connectionTokens(upstream.connection);
  const out: string[] = [];
  for (const name in upstream) {
    if (DROP_RESPONSE.has(name) || (extra !== undefined && extra.has(name))) continue;
    const v = upstream[name];
    if (v === undefined) continue;
    if (typeof v === 'string') out.push(name, v);
    else for (const item of v) out.push(name, item);
  }
  out.push('x-request-id', ctx.requestId);
  const lh = ctx.limitHeaders;
  for (let i = 0; i < lh.length; i++) out.push(lh[i]!);
  return out;
}
