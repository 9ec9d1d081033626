import type { SluiceConfig } from '../config/types.js';
import { sendError } from '../http/errors.js';
import { lingerClose } from '../../common/linger.js';
import { hostName } from '../http/host-header.js';
import type { RequestContext, Stage } from '../pipeline/context.js';
import type { CompiledRoute } from './compiled-route.js';
import { bytes, NONE, REDIRECT } from './path-level.js';
import { RouteTable } from './route-table.js';
import { escapeUri } from './uri-escape.js';

/**
 * route: the virtual host for the listener and Host, then its route for the normalised
 * path by nginx's rules (path-level.ts). Sets ctx.route and ctx.compiledRoute (and
 * ctx.captures for a regex route); answers 404 when nothing matches, 400 for a Host
 * nginx would refuse, and nginx's auto-redirect 301 itself.
 */
export function routeStage(cfg: Pick<SluiceConfig, 'virtual_hosts'>): Stage {
  const table = new RouteTable(cfg);
  return (ctx) => {
    const host = hostName(ctx.req.headers.host);
    if (host === undefined) return sendError(ctx, 400, 'bad_request', 'invalid Host header');
    const hosts = table.forListener(ctx.listener);
    if (hosts === undefined) return sendError(ctx, 404, 'not_found', `no virtual host on listener ${ctx.listener}`);
    const vhost = hosts.find(host);
    ctx.host = host === '' ? vhost.defaultHost : host;
    const found = vhost.routes.find(ctx.uri, ctx);
    if (found === NONE) return sendError(ctx, 404, 'not_found', `no route for ${ctx.path}`);
    const route = ctx.compiledRoute!;
    ctx.route = route.config;
    if (found === REDIRECT) return autoRedirect(ctx, route);
    return true;
  };
}

/**
 * nginx's 301 from `/dir` to `/dir/` for a proxying route `/dir/`, with the query kept.
 * The Location is relative: nginx makes it absolute from its own listener's scheme and
 * port, which is the wrong one behind another proxy.
 */
function autoRedirect(ctx: RequestContext, route: CompiledRoute): false {
  const path = escapeUri(bytes(route.config.prefix ?? route.config.exact!));
  const location = ctx.query === undefined || ctx.query === '' ? path : `${path}?${ctx.query}`;
  lingerClose(ctx.res);
  ctx.res.writeHead(301, ['location', location, 'content-length', '0', 'x-request-id', ctx.requestId]);
  ctx.res.end();
  return false;
}
