import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TSchema } from '@sinclair/typebox';
import { errorBody, HttpError } from '../errors.js';
import { requestIdFrom } from '../request-id.js';
import type { AuditEvent, AuditLog } from './audit-log.js';
import type { AuthThrottle } from './throttle.js';
import { bearerToken, type AdminTokens } from './tokens.js';

// One admin listener's request handling, for the gateway's admin port and sluice-webhooks'
// alike: a table of routes (method, path template, handler, the route's OpenAPI
// description), the bearer-token check with its flood throttle, the JSON error envelope,
// and the audit entry of every change. An admin endpoint is one route object and one line
// in its listener's table; common/openapi.ts builds the document from the same table.

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A response in the OpenAPI document: a description, and the schema of its JSON body (a component name or a schema). */
export interface ResponseDoc {
  readonly description: string;
  readonly schema?: string | TSchema;
  /** Another media type than JSON (Prometheus text, say). */
  readonly content?: Readonly<Record<string, unknown>>;
  readonly headers?: Readonly<Record<string, unknown>>;
}

export interface ParameterDoc {
  readonly name: string;
  readonly in: 'path' | 'query';
  readonly schema: TSchema;
  readonly required?: boolean;
  readonly description?: string;
}

export interface OperationDoc {
  readonly operationId: string;
  readonly summary: string;
  /** The component name of the JSON request body. */
  readonly body?: string;
  readonly parameters?: readonly ParameterDoc[];
  readonly responses: Readonly<Record<number, ResponseDoc>>;
}

export interface AdminCall {
  readonly req: IncomingMessage;
  readonly query: URLSearchParams;
  /** The path template's `{name}` parts, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly requestId: string;
  /** The label of the admin token (`-` on open routes). */
  readonly actor: string;
  readonly peer: string;
  /** Records a change made by this call (after it is made). */
  audit(event: AuditEvent): Promise<void>;
}

export interface AdminAnswer {
  readonly status: number;
  /** Sent as JSON; none for 204. */
  readonly body?: unknown;
  /** Sent as is, with this content type, instead of JSON. */
  readonly raw?: { readonly contentType: string; readonly data: string | Buffer };
  readonly headers?: Readonly<Record<string, string>>;
}

export interface AdminRoute<D> {
  readonly method: Method;
  /** `/admin/keys/{digest}`: the OpenAPI template syntax. */
  readonly path: string;
  /** Needs no token (health, metrics, the document itself). */
  readonly open?: boolean;
  readonly doc: OperationDoc;
  handle(call: AdminCall, deps: D): Promise<AdminAnswer> | AdminAnswer;
}

export interface AdminRouterOptions<D> {
  /** `gateway` or `webhooks`: the audit entries' source. */
  readonly source: string;
  readonly routes: readonly AdminRoute<D>[];
  readonly deps: () => D;
  /** The tokens now (a reload may change them); undefined: the admin API is disabled (403). */
  readonly tokens: () => AdminTokens | undefined;
  /** What the 401 and 403 say about where the token comes from. */
  readonly tokenHint: string;
  readonly throttle: AuthThrottle;
  readonly audit: () => AuditLog;
  readonly log: { warn(o: object, m: string): void; error(o: object, m: string): void };
  /** The peer is the X-Forwarded-For a trusted front (the cluster primary) sets, not the connection's. */
  readonly trustForwardedPeer?: boolean;
}

interface Compiled<D> {
  readonly route: AdminRoute<D>;
  readonly pattern: RegExp;
  readonly names: readonly string[];
}

function compile<D>(route: AdminRoute<D>): Compiled<D> {
  const names: string[] = [];
  const source = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([A-Za-z_]+)\\?\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { route, pattern: new RegExp(`^${source}$`), names };
}

function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, 'bad_request', 'path: bad percent-encoding');
  }
}

/** The peer address, IPv4-mapped IPv6 written as IPv4. */
export function peerOf(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export function sendJsonText(res: ServerResponse, status: number, text: string, headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function adminRouter<D>(o: AdminRouterOptions<D>): RequestListener {
  const compiled = o.routes.map(compile);
  const find = (path: string): { hits: { c: Compiled<D>; m: RegExpExecArray }[] } => ({
    hits: compiled.flatMap((c) => {
      const m = c.pattern.exec(path);
      return m === null ? [] : [{ c, m }];
    }),
  });

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    const { hits } = find(url.pathname);
    const openHit = hits.find((h) => h.c.route.open === true && h.c.route.method === method);
    const forwarded = o.trustForwardedPeer === true ? req.headers['x-forwarded-for'] : undefined;
    const peer = typeof forwarded === 'string' && forwarded !== '' ? forwarded : peerOf(req);
    let actor = '-';
    if (openHit === undefined) {
      if (!url.pathname.startsWith('/admin/')) throw new HttpError(404, 'not_found', `no admin endpoint ${url.pathname}`);
      actor = authorize(req, peer);
    }
    const hit = openHit ?? hits.find((h) => h.c.route.method === method);
    if (hit === undefined) {
      if (hits.length === 0) throw new HttpError(404, 'not_found', `no admin endpoint ${method} ${url.pathname}`);
      const allow = [...new Set(hits.map((h) => h.c.route.method))].join(', ');
      throw new HttpError(405, 'method_not_allowed', `use ${allow}`, undefined, { allow });
    }
    const params: Record<string, string> = {};
    hit.c.names.forEach((name, i) => { params[name] = decodePart(hit.m[i + 1]!); });
    const call: AdminCall = {
      req, query: url.searchParams, params, requestId, actor, peer,
      audit: async (event) => {
        const entry = { at: new Date().toISOString(), actor, source: o.source, peer, request_id: requestId, details: {}, ...event };
        try {
          await o.audit().append(entry);
        } catch (err) {
          // The change is made: it is answered as made, and the log keeps what the audit log could not.
          o.log.error({ err: (err as Error).message, audit: entry }, 'audit entry not stored');
        }
      },
    };
    // A body nobody reads would hold the connection; routes with a body read it themselves.
    if (hit.c.route.doc.body === undefined) req.resume();
    const answer = await hit.c.route.handle(call, o.deps());
    if (answer.raw !== undefined) {
      res.writeHead(answer.status, { ...answer.headers, 'content-type': answer.raw.contentType, 'content-length': Buffer.byteLength(answer.raw.data) });
      res.end(answer.raw.data);
    } else if (answer.body === undefined) {
      res.writeHead(answer.status, answer.headers);
      res.end();
    } else {
      sendJsonText(res, answer.status, JSON.stringify(answer.body), answer.headers);
    }
  }

  /** The token's label; throws 429 while the peer is backing off, 403 when disabled, 401 when wrong. */
  function authorize(req: IncomingMessage, peer: string): string {
    const wait = o.throttle.waitMs(peer);
    if (wait > 0) {
      throw new HttpError(429, 'rate_limited', 'too many wrong admin tokens from this address; wait before trying again', undefined,
        { 'retry-after': String(Math.ceil(wait / 1000)) });
    }
    const tokens = o.tokens();
    if (tokens === undefined) throw new HttpError(403, 'forbidden', `admin API disabled: ${o.tokenHint}`);
    const token = bearerToken(req.headers.authorization);
    const label = token === undefined ? undefined : tokens.match(token);
    if (label === undefined) {
      o.throttle.failed(peer);
      o.log.warn({ peer }, 'admin token refused');
      throw new HttpError(401, 'unauthorized', 'admin API needs Authorization: Bearer <admin token>');
    }
    o.throttle.succeeded(peer);
    return label;
  }

  return (req, res) => {
    const requestId = requestIdFrom(req.headers['x-request-id']);
    res.setHeader('x-request-id', requestId);
    handle(req, res, requestId).catch((err: unknown) => {
      const e = err instanceof HttpError ? err : new HttpError(500, 'internal_error', 'admin request failed');
      if (!(err instanceof HttpError)) o.log.error({ err: (err as Error).message, request_id: requestId }, 'admin request failed');
      if (res.headersSent) { res.destroy(); return; }
      sendJsonText(res, e.status, errorBody(e, requestId), e.headers);
    });
  };
}

/** GET `path`: the listener's own OpenAPI document, open like the health endpoints. */
export function openApiRoute<D>(path: string, text: () => Buffer): AdminRoute<D> {
  return {
    method: 'GET', path, open: true,
    doc: {
      operationId: 'openapi', summary: 'This document.',
      responses: { 200: { description: 'OpenAPI 3.1.', content: { 'application/json': { schema: { type: 'object' } } } } },
    },
    handle: () => ({ status: 200, raw: { contentType: 'application/json; charset=utf-8', data: text() } }),
  };
}

/** A function that computes its value once, on first call. */
export function once<T>(f: () => T): () => T {
  let v: { value: T } | undefined;
  return () => (v ??= { value: f() }).value;
}
