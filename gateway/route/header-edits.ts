import type { RouteConfig } from '../config/types.js';
import type { RequestContext } from '../pipeline/context.js';
import { compileTemplate, type Template } from './template.js';

// request_headers / response_headers: nginx proxy_set_header (set; a value that comes out
// empty, say $http_x for a header the client did not send, sends no header, as nginx), add_header (add; always, where nginx adds only to
// 2xx and 3xx answers unless told `always`) and proxy_hide_header / proxy_pass_request
// header removal (remove). Applied to the flat [name, value, ...] list the proxy builds:
// removed and set names go first, then set and added values are appended.

type EditsConfig = NonNullable<RouteConfig['request_headers']>;

export interface HeaderEdits {
  /** Rewrites `headers` (a flat list, names lower-case) in place. */
  apply(headers: string[], ctx: RequestContext): void;
}

/** Headers the gateway owns on each side: a route edits them through other fields, or not at all. */
export const RESERVED_REQUEST = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect']);
export const RESERVED_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'x-request-id']);

export function compileHeaderEdits(e: EditsConfig): HeaderEdits | undefined {
  const set = Object.entries(e.set ?? {}).map(([n, v]) => [n.toLowerCase(), compileTemplate(v, 'header') as Template] as const);
  const add = Object.entries(e.add ?? {}).map(([n, v]) => [n.toLowerCase(), compileTemplate(v, 'header') as Template] as const);
  const drop = new Set([...(e.remove ?? []).map((n) => n.toLowerCase()), ...set.map(([n]) => n)]);
  if (drop.size === 0 && add.length === 0) return undefined;
  return {
    apply(headers, ctx) {
      if (drop.size > 0) {
        let w = 0;
        for (let r = 0; r < headers.length; r += 2) {
          if (drop.has(headers[r]!)) continue;
          headers[w++] = headers[r]!;
          headers[w++] = headers[r + 1]!;
        }
        headers.length = w;
      }
      for (const [name, value] of set) {
        const v = value.render(ctx);
        if (v !== '') headers.push(name, v);
      }
      for (const [name, value] of add) headers.push(name, value.render(ctx));
    },
  };
}

/** Why an edit list cannot be used on this side, or undefined. */
export function headerEditsProblem(e: Partial<EditsConfig>, reserved: ReadonlySet<string>, side: string): string[] {
  const names = [...Object.keys(e.set ?? {}), ...Object.keys(e.add ?? {}), ...(Array.isArray(e.remove) ? e.remove : [])];
  return names.filter((n) => typeof n === 'string' && reserved.has(n.toLowerCase()))
    .map((n) => `${n}: the gateway sets this ${side} header itself${n.toLowerCase() === 'host' ? ' (use the route\'s host field)' : ''}`);
}
