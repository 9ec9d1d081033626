import type { RequestContext } from '../pipeline/context.js';
import { peerAddress } from '../http/real-ip.js';
import { escapeUri } from './uri-escape.js';

// The variables a route's strings may use (return bodies and locations, header values, the
// Host sent upstream, rewrite replacements): nginx's names and meanings, one table. A
// string is split into literal parts and variables once, at config load; an unknown
// variable is a config error there. `$name` only: `${...}` is the config file's own
// environment syntax, resolved before this sees the text. A `$` not followed by a name is a `$`.

export type Captures = ArrayLike<string | undefined>;
type Getter = (ctx: RequestContext, captures: Captures | undefined) => string;

/** Every variable but $http_<name> and $1..$9, with what it is. */
export const VARIABLES: Readonly<Record<string, { readonly get: Getter; readonly doc: string }>> = {
  scheme: { get: (ctx) => schemeOf(ctx), doc: 'http or https' },
  host: { get: (ctx) => ctx.host, doc: 'the Host header without its port, lower-case (else the virtual host\'s first name)' },
  server_port: { get: (ctx) => String(ctx.req.socket.localPort ?? ''), doc: 'the port the request came in on' },
  request_uri: { get: (ctx) => ctx.req.url ?? '', doc: 'the request target as the client sent it: path and query, escapes as written' },
  uri: { get: (ctx) => ctx.uri, doc: 'the normalised path routes match: decoded, dot segments resolved, slashes merged' },
  args: { get: (ctx) => ctx.query ?? '', doc: 'the query string, without its ?' },
  is_args: { get: (ctx) => (ctx.query !== undefined && ctx.query !== '' ? '?' : ''), doc: '? when there is a query string, else empty' },
  remote_addr: { get: (ctx) => ctx.clientAddress, doc: 'the client address (server.real_ip)' },
  request_id: { get: (ctx) => ctx.requestId, doc: 'the X-Request-Id of the request' },
  proxy_add_x_forwarded_for: { get: (ctx) => addForwardedFor(ctx), doc: 'X-Forwarded-For as received, with the peer address appended' },
};

/** https on a TLS connection, else http. */
export function schemeOf(ctx: RequestContext): 'http' | 'https' {
  return (ctx.req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}

/** nginx's $proxy_add_x_forwarded_for: X-Forwarded-For as received (repeated headers joined), with the peer's address appended. */
export function addForwardedFor(ctx: RequestContext): string {
  const prior = ctx.req.headers['x-forwarded-for'];
  return typeof prior === 'string' && prior !== '' ? `${prior}, ${peerAddress(ctx.req)}` : peerAddress(ctx.req);
}

/**
 * The X-Forwarded-For Sluice sends by default: the list a trusted proxy (server.real_ip)
 * sent with the peer appended, as nginx's $proxy_add_x_forwarded_for; from any other peer
 * just its address, since an untrusted client can write anything into the list and
 * upstreams often believe its first entry. `$proxy_add_x_forwarded_for` in
 * request_headers.set gives nginx's behaviour for every peer.
 */
export function forwardedFor(ctx: RequestContext): string {
  return ctx.peerTrusted ? addForwardedFor(ctx) : peerAddress(ctx.req);
}

/**
 * How a value is used, which decides how a variable holding decoded path text is written:
 * `text` as it is (bodies, paths a rewrite escapes as a whole), `header` with control
 * characters escaped (a header value cannot hold them), `uri` with $uri and the captures
 * escaped as nginx escapes a URI (a Location) and then as a header.
 */
export type TemplateMode = 'text' | 'header' | 'uri';

export interface Template {
  /** The text, or the one string it always is. */
  readonly render: (ctx: RequestContext, captures?: Captures) => string;
  /** Whether it has a variable at all. */
  readonly constant: boolean;
  /** The highest $N it uses (0: none). */
  readonly maxCapture: number;
}

const VAR = /\$([A-Za-z_][A-Za-z0-9_]*|[1-9])/g;

/** The template, or the problems with it (unknown variables), each a sentence. */
export function compileTemplate(text: string, mode: TemplateMode = 'text'): Template | string[] {
  const parts: (string | Getter)[] = [];
  const problems: string[] = [];
  let maxCapture = 0;
  let last = 0;
  for (const m of text.matchAll(VAR)) {
    const name = m[1]!;
    if (m.index > last) parts.push(text.slice(last, m.index));
    last = m.index + m[0].length;
    const getter = variable(name, mode);
    if (getter === undefined) {
      problems.push(`unknown variable $${name} (known: ${[...Object.keys(VARIABLES), 'http_<name>', '1..9'].map((v) => `$${v}`).join(' ')})`);
      continue;
    }
    if (/^[1-9]$/.test(name)) maxCapture = Math.max(maxCapture, Number(name));
    parts.push(getter);
  }
  if (last < text.length) parts.push(text.slice(last));
  if (problems.length > 0) return problems;
  const finish = mode === 'text' ? (s: string) => s : headerSafe;
  if (parts.every((p) => typeof p === 'string')) {
    const s = finish(parts.join(''));
    return { render: () => s, constant: true, maxCapture };
  }
  return {
    render: (ctx, captures) => {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p(ctx, captures);
      return finish(out);
    },
    constant: false,
    maxCapture,
  };
}

function variable(name: string, mode: TemplateMode): Getter | undefined {
  const escape = mode === 'uri' ? escapeUri : undefined;
  if (/^[1-9]$/.test(name)) {
    const n = Number(name);
    return escape === undefined
      ? (ctx, captures) => (captures ?? ctx.captures)?.[n] ?? ''
      : (ctx, captures) => escape((captures ?? ctx.captures)?.[n] ?? '');
  }
  if (name.startsWith('http_') && name.length > 5) {
    const header = name.slice(5).replaceAll('_', '-').toLowerCase();
    return (ctx) => {
      const v = ctx.req.headers[header];
      return v === undefined ? '' : Array.isArray(v) ? v.join(', ') : v;
    };
  }
  const known = Object.hasOwn(VARIABLES, name) ? VARIABLES[name]!.get : undefined;
  if (known !== undefined && name === 'uri' && escape !== undefined) return (ctx) => escape(ctx.uri);
  return known;
}

/** A header value cannot hold control characters; decoded path text may. They are written %XX. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/g;
export function headerSafe(s: string): string {
  return CONTROL.test(s) ? s.replace(CONTROLS, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`) : s;
}
