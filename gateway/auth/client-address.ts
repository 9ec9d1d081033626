import type { RequestContext } from '../pipeline/context.js';

/**
 * The client address auth judges a key's allowlist by: the TCP peer for now. The routes
 * work adds ctx.clientAddress (the real client behind trusted proxies); this is the one
 * place to switch to it.
 */
export function clientAddress(ctx: RequestContext): string {
  return ctx.req.socket.remoteAddress ?? '';
}
