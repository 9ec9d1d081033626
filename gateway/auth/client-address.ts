import type { RequestContext } from '../pipeline/context.js';

/**
 * The client address auth judges a key's allowlist by: the real client as the route stage
 * found it (the peer, or behind trusted proxies what server.real_ip finds), so a key
 * allowlisted for an office is judged by the office's address, not the load balancer's.
 */
export function clientAddress(ctx: RequestContext): string {
  return ctx.clientAddress;
}
