import type { IncomingMessage } from 'node:http';
import type { RealIpConfig, ServerConfig } from '../config/types.js';
import { formatIp, inAnyCidr, parseCidr, parseIp, type Cidr } from './ip-address.js';

// The client's address, nginx's realip module: the peer's, unless the peer is a trusted
// proxy (set_real_ip_from), in which case the address its header carries
// (real_ip_header). X-Forwarded-For is read from the right: the last entry is what the
// trusted peer saw; with real_ip_recursive each entry that is itself a trusted proxy
// hands on to the one before it, and the first untrusted one is the client. An entry
// that is not an address ends the walk (the last good one stands). Any other header
// holds one address (X-Real-IP). A peer that is not trusted cannot choose its address:
// its header is never read.

/** server.real_ip, or what server.trust_forwarded stands for: every peer's X-Forwarded-For, last hop only. */
export function realIpConfig(server: ServerConfig): RealIpConfig | undefined {
  if (server.real_ip !== undefined) return server.real_ip;
  return server.trust_forwarded ? { trusted: ['all'], header: 'x-forwarded-for', recursive: false } : undefined;
}

/** What a request's client address is filled into: ctx.clientAddress, and whether the peer is a trusted proxy. */
export interface ClientAddressTarget {
  readonly req: IncomingMessage;
  clientAddress: string;
  peerTrusted: boolean;
}

/** Built once per config: fills in each request's client address. */
export function clientAddressResolver(server: ServerConfig): (ctx: ClientAddressTarget) => void {
  const cfg = realIpConfig(server);
  if (cfg === undefined || cfg.trusted.length === 0) return (ctx) => { ctx.clientAddress = peerAddress(ctx.req); };
  const trusted = cfg.trusted.map((t) => parseCidr(t) as Cidr);
  const header = cfg.header.toLowerCase();
  const list = header === 'x-forwarded-for';
  return (ctx) => {
    const peer = peerAddress(ctx.req);
    ctx.clientAddress = peer;
    const bytes = parseIp(peer);
    if (bytes === undefined || !inAnyCidr(bytes, trusted)) return;
    ctx.peerTrusted = true;
    const value = ctx.req.headers[header];
    if (typeof value !== 'string' || value === '') return;
    ctx.clientAddress = (list ? fromForwardedFor(value, trusted, cfg.recursive) : formatted(value.trim())) ?? peer;
  };
}

/** The TCP peer, v4-mapped v6 shown as v4 (nginx's $remote_addr on a dual-stack socket). */
export function peerAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/** The walk from the right (ngx_http_get_forwarded_addr_internal); undefined when the last entry is no address. */
function fromForwardedFor(xff: string, trusted: readonly Cidr[], recursive: boolean): string | undefined {
  let found: string | undefined;
  let end = xff.length;
  for (;;) {
    while (end > 0 && (xff[end - 1] === ' ' || xff[end - 1] === ',')) end--;
    let start = end;
    while (start > 0 && xff[start - 1] !== ' ' && xff[start - 1] !== ',') start--;
    const entry = xff.slice(start, end);
    const bytes = entry === '' ? undefined : parseIp(withoutPort(entry));
    if (bytes === undefined) return found;
    found = formatIp(bytes);
    if (!recursive || start === 0 || !inAnyCidr(bytes, trusted)) return found;
    end = start;
  }
}

function formatted(entry: string): string | undefined {
  const bytes = parseIp(withoutPort(entry));
  return bytes === undefined ? undefined : formatIp(bytes);
}

/** nginx's ngx_parse_addr_port: `1.2.3.4:80` and `[::1]:80` carry a port to drop; a bare v6 address has none. */
function withoutPort(entry: string): string {
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    return close === -1 ? entry : entry.slice(1, close);
  }
  const colon = entry.indexOf(':');
  return colon !== -1 && colon === entry.lastIndexOf(':') ? entry.slice(0, colon) : entry;
}
