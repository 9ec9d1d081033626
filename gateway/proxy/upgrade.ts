import { request as httpRequest, ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { RouteConfig, SluiceConfig } from '../config/types.js';
import { everyRoute } from '../route/resolve.js';
import { sendError } from '../http/errors.js';
import type { Metrics } from '../observe/metrics.js';
import { RequestContext, type Stage } from '../pipeline/context.js';
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { mapUpstreamError } from './upstream-errors.js';

// WebSocket (and any other HTTP/1.1 Upgrade) pass-through, like nginx's
// `proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection upgrade;` on a
// location, or Envoy's upgrade_configs. The Upgrade request runs the whole stage chain
// (route, access, auth, limits, balance) as one request; its last step asks the chosen
// target for the same upgrade and, on 101, splices the two sockets together. The tunnel
// is the request's response for everything that counts requests: it holds its limit_conn
// slot, its plan's in-flight lease, its place in shed.max_inflight and its target's
// outstanding count until either side closes, and drain cuts it at the deadline.

/** An Upgrade request's context: the bytes the client sent after its head belong to the tunnel. */
export class UpgradeContext extends RequestContext {
  constructor(req: IncomingMessage, res: ServerResponse, requestId: string, path: string, startedAt: number, readonly head: Buffer) {
    super(req, res, requestId, path, startedAt);
  }
}

/**
 * Node hands an Upgrade request over with its socket and no response object. This gives
 * it one, so every stage answers it (a 401, a 429, a plain proxied answer) exactly as it
 * answers any request. No second request can follow on the socket (Node's parser has let
 * go of it), so it closes once such an answer is out.
 */
export function upgradeResponse(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  res.shouldKeepAlive = false;
  socket.on('error', () => socket.destroy());
  res.once('finish', () => socket.end(() => socket.destroy()));
  return res;
}

/** `websocket` from `Upgrade: WebSocket` (the first protocol offered, without a version). */
function protocolOf(value: string | undefined): string {
  if (value === undefined) return '';
  const first = value.split(',', 1)[0]!;
  const slash = first.indexOf('/');
  return (slash < 0 ? first : first.slice(0, slash)).trim().toLowerCase();
}

export interface UpgradeRoutes {
  /**
   * Node's shouldUpgradeCallback: an Upgrade that some route may tunnel, on a request with
   * no body, becomes a tunnel candidate. Any other is an ordinary request (its Upgrade
   * header is hop-by-hop and is dropped), which is all it ever was before.
   */
  readonly accepts: (req: IncomingMessage) => boolean;
  /** The upgrade chain's last stage: the tunnel when the route allows the protocol, else `plain`. */
  readonly stage: Stage;
}

/** Built once per config: which routes tunnel which protocols. */
export function upgradeRoutes(cfg: SluiceConfig, metrics: Metrics, plain: Stage): UpgradeRoutes {
  const byRoute = new Map<RouteConfig, ReadonlySet<string>>();
  const any = new Set<string>();
  for (const r of everyRoute(cfg)) {
    if (r.upgrade === undefined) continue;
    const protocols = new Set(r.upgrade.map((p) => p.toLowerCase()));
    byRoute.set(r, protocols);
    for (const p of protocols) any.add(p);
  }
  return {
    accepts: (req) => any.size > 0 && req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined
      && any.has(protocolOf(req.headers.upgrade)),
    // nginx without the Upgrade headers set forwards the request as a plain one: so does a route without `upgrade`.
    stage: (ctx) => (byRoute.get(ctx.route!)?.has(protocolOf(ctx.req.headers.upgrade)) === true
      ? openTunnel(ctx as UpgradeContext, metrics)
      : plain(ctx)),
  };
}

class TunnelTimeout extends Error {
  // The proxy's classification (upstream-errors.ts) reads these codes: one table for both.
  constructor(readonly code: 'UND_ERR_CONNECT_TIMEOUT' | 'UND_ERR_HEADERS_TIMEOUT') { super(code); }
}

function openTunnel(ctx: UpgradeContext, metrics: Metrics): false {
  const target = ctx.target!;
  const upstream = target.upstream;
  const origin = new URL(target.origin);
  const req = ctx.req;
  const res = ctx.res;
  const attempt = target.begin();
  const route = ctx.compiledRoute!;
  const headers = upstreamRequestHeaders(ctx);
  headers.push('connection', 'upgrade', 'upgrade', req.headers.upgrade!);
  if (!headers.some((h, i) => i % 2 === 0 && h === 'host')) headers.push('host', origin.host);
  const send = origin.protocol === 'https:' ? httpsRequest : httpRequest;
  const up: ClientRequest = send({
    host: origin.hostname, port: origin.port, method: req.method, headers, agent: false, setHost: false,
    // What the proxy stage would send: the route's rewrite, else the client's path.
    path: route.rewrite === undefined ? ctx.forwardPath : route.rewrite(ctx),
    ...(origin.protocol === 'https:' ? { servername: origin.hostname } : {}),
  });
  let timer = setTimeout(() => up.destroy(new TunnelTimeout('UND_ERR_CONNECT_TIMEOUT')), route.timeouts?.connectMs ?? upstream.connect_timeout_ms);
  up.once('socket', (s: Socket) => s.once(origin.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
    clearTimeout(timer);
    timer = setTimeout(() => up.destroy(new TunnelTimeout('UND_ERR_HEADERS_TIMEOUT')), route.timeouts?.headersMs ?? upstream.headers_timeout_ms);
  }));
  // The client left (or drain cut it) at any point: nothing upstream stays open for it.
  res.once('close', () => up.destroy());
  const routeName = ctx.route!.name;

  up.on('upgrade', (upRes: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    clearTimeout(timer);
    attempt.responded(101, upRes.headers['x-backend-load']);
    const client = req.socket;
    if (res.destroyed) {
      upSocket.destroy();
      attempt.end();
      return;
    }
    // The 101's own upgrade and connection are hop-by-hop too, but they are what the client needs to hear.
    res.sendDate = false;
    res.writeHead(101, upRes.statusMessage ?? 'Switching Protocols',
      [...clientResponseHeaders(ctx, upRes.headers), 'connection', 'upgrade', 'upgrade', upRes.headers.upgrade ?? req.headers.upgrade!]);
    res.flushHeaders();
    metrics.tunnelsOpen.inc();
    metrics.tunnels.inc({ route: routeName });
    const close = (): void => {
      client.destroy();
      upSocket.destroy();
    };
    upSocket.on('error', close);
    upSocket.once('close', close);
    client.once('close', () => {
      close();
      attempt.end();
      metrics.tunnelsOpen.dec();
      metrics.tunnelBytes.inc({ route: routeName, direction: 'in' }, ctx.bytesIn);
      metrics.tunnelBytes.inc({ route: routeName, direction: 'out' }, ctx.bytesOut);
    });
    client.on('data', (d: Buffer) => { ctx.bytesIn += d.length; });
    upSocket.on('data', (d: Buffer) => { ctx.bytesOut += d.length; });
    if (upHead.length > 0) {
      ctx.bytesOut += upHead.length;
      client.write(upHead);
    }
    if (ctx.head.length > 0) {
      ctx.bytesIn += ctx.head.length;
      upSocket.write(ctx.head);
    }
    client.pipe(upSocket);
    upSocket.pipe(client);
  });

  // The upstream declined the upgrade (a 400, 403, 426...): its answer is the client's.
  up.on('response', (upRes: IncomingMessage) => {
    clearTimeout(timer);
    attempt.responded(upRes.statusCode!, upRes.headers['x-backend-load']);
    if (res.destroyed) {
      upRes.destroy();
      attempt.end();
      return;
    }
    res.writeHead(upRes.statusCode!, upRes.statusMessage ?? '', clientResponseHeaders(ctx, upRes.headers));
    upRes.on('data', (d: Buffer) => { ctx.bytesOut += d.length; });
    upRes.once('close', () => attempt.end());
    upRes.once('error', () => res.destroy());
    upRes.pipe(res);
  });

  up.on('error', (err: Error) => {
    clearTimeout(timer);
    const m = mapUpstreamError(err);
    attempt.end(true);
    if (res.destroyed || res.writableEnded) return;
    metrics.upstreamErrors.inc({ upstream: upstream.name, kind: m.kind });
    sendError(ctx, m.status, m.code, m.message);
  });
  up.end();
  return false;
}
