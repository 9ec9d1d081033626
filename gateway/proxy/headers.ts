import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/context.js';
import { forwardedFor, schemeOf } from '../route/template.js';

// Hop-by-hop (RFC 9110 §7.6.1) plus what the gateway itself sets or consumes.
// `expect` is answered by the gateway's own server, never forwarded.
const DROP_REQUEST = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authorization', 'proxy-authenticate', 'host', 'expect', 'x-request-id',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded', 'x-api-key',
]);

const DROP_RESPONSE = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-authenticate', 'x-request-id',
]);

/** Headers named in Connection are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === '' || s.toLowerCase() === 'keep-alive' || s.toLowerCase() === 'close') return undefined;
  return new Set(s.split(',').map((t) => t.trim().toLowerCase()));
}

/**
 * The upstream request's headers as a flat [name, value, ...] list: the client's minus
 * hop-by-hop and the gateway's own, then X-Request-Id, X-Forwarded-For with the peer
 * appended (nginx's $proxy_add_x_forwarded_for), X-Real-IP (the client address after
 * server.real_ip), X-Forwarded-Proto/Host, the identity, the Host the route's policy
 * gives, and last the route's own edits.
 */
export function upstreamRequestHeaders(ctx: RequestContext): string[] {
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
  out.push(
    'x-request-id', ctx.requestId,
    'x-forwarded-for', forwardedFor(ctx),
    'x-real-ip', ctx.clientAddress,
    'x-forwarded-proto', schemeOf(ctx),
  );
  const host = req.headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  const id = ctx.identity;
  if (id !== undefined) out.push('x-sluice-customer', id.customer, 'x-sluice-plan', id.plan.name);
  const route = ctx.compiledRoute!;
  const upstreamHost = route.upstreamHost(ctx);
  if (upstreamHost !== undefined) out.push('host', upstreamHost);
  route.requestEdits?.apply(out, ctx);
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
  ctx.compiledRoute!.responseEdits?.apply(out, ctx);
  out.push('x-request-id', ctx.requestId);
  const lh = ctx.limitHeaders;
  for (let i = 0; i < lh.length; i++) out.push(lh[i]!);
  return out;
}
