// Which IP addresses a server-side fetch or webhook may connect to.
//
// The decision is made on the address we are about to connect to (never on a hostname),
// so it has to recognise every textual form Node may hand us for a non-public host:
// plain IPv4, IPv6 with or without a zone id, and IPv6 forms that embed an IPv4 address.
// It fails closed: anything that does not parse as an IP address is forbidden.
//
// The ranges follow the IANA IPv4/IPv6 Special-Purpose Address Registries. Where a
// special range is "globally reachable" in the registry but has no business serving
// images to us (6to4, Teredo, NAT64, benchmarking), it is forbidden anyway: refusing a
// rare legitimate host is cheap, reaching an internal one is not.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

interface Cidr {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** Parses a literal IP (IPv6 may carry a %zone, which is ignored) to bytes, or undefined. */
export function parseIp(text: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const kind = isIP(s);
  if (kind === 4) return { family: 4, bytes: parseV4(s) };
  if (kind === 6) return { family: 6, bytes: parseV6(s) };
  return undefined;
}

function parseV4(s: string): Uint8Array {
  return Uint8Array.from(s.split('.').map((p) => Number(p)));
}

// Only called on strings net.isIP accepted, so the grammar is already validated.
function parseV6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  let tail4: Uint8Array | undefined;
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) !== -1) {
    tail4 = parseV4(s.slice(lastColon + 1));
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups =
    rest === undefined
      ? headGroups
      : [...headGroups, ...new Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

/** Parses "a.b.c.d/n", "x::/n" or a bare address (a /32 or /128). Throws on garbage. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const ipText = slash === -1 ? text : text.slice(0, slash);
  const ip = parseIp(ipText);
  if (!ip) throw new Error(`invalid address in CIDR "${text}"`);
  const max = ip.family === 4 ? 32 : 128;
  const prefixText = slash === -1 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    throw new Error(`invalid prefix length in CIDR "${text}"`);
  }
  return { family: ip.family, bytes: ip.bytes, prefix: Number(prefixText) };
}

function inCidr(bytes: Uint8Array, family: 4 | 6, c: Cidr): boolean {
  if (family !== c.family) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((c.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

const FORBIDDEN_V4: readonly Cidr[] = [
  '0.0.0.0/8', // "this network"; 0.0.0.0 reaches the local host on Linux
  '10.0.0.0/8', // RFC 1918
  '100.64.0.0/10', // CGNAT shared space, RFC 6598
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local, incl. cloud metadata 169.254.169.254
  '172.16.0.0/12', // RFC 1918
  '192.0.0.0/24', // IETF protocol assignments (DS-Lite, NAT64 discovery)
  '192.0.2.0/24', // TEST-NET-1
  '192.88.99.0/24', // 6to4 relay anycast (deprecated)
  '192.168.0.0/16', // RFC 1918
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // TEST-NET-2
  '203.0.113.0/24', // TEST-NET-3
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved, incl. broadcast 255.255.255.255
].map(parseCidr);

const FORBIDDEN_V6: readonly Cidr[] = [
  '::/96', // unspecified, loopback, deprecated IPv4-compatible
  '64:ff9b::/96', // NAT64 well-known prefix: the gateway would reach an embedded v4
  '64:ff9b:1::/48', // NAT64 local-use
  '100::/64', // discard-only
  '2001::/23', // IETF protocol assignments (Teredo, benchmarking, ORCHID)
  '2001:db8::/32', // documentation
  '2002::/16', // 6to4: embeds an arbitrary IPv4
  '3fff::/20', // documentation (RFC 9637)
  '5f00::/16', // SRv6 SIDs
  'fc00::/7', // unique-local
  'fe80::/10', // link-local
  'fec0::/10', // site-local (deprecated)
  'ff00::/8', // multicast
].map(parseCidr);

// Everything outside global unicast is unassigned or special; the explicit list above is
// for readability, this catch-all keeps us safe from ranges we did not think of.
const GLOBAL_UNICAST_V6 = parseCidr('2000::/3');
const MAPPED_V6 = parseCidr('::ffff:0:0/96');

// Allow-lists come from config and are reused for every check; parse each list once.
const parsedAllow = new WeakMap<readonly string[], readonly Cidr[]>();
function allowCidrs(allow: readonly string[]): readonly Cidr[] {
  let cached = parsedAllow.get(allow);
  if (!cached) {
    cached = allow.map(parseCidr);
    parsedAllow.set(allow, cached);
  }
  return cached;
}

/**
 * True when a server-side request must not connect to `ip`.
 * `allow` (CIDRs or bare addresses from config) overrides the built-in deny ranges; an
 * IPv4 entry also covers the IPv4-mapped IPv6 form of the same address.
 */
export function isForbiddenAddress(ip: string, allow: readonly string[]): boolean {
  const parsed = parseIp(ip);
  if (!parsed) return true;
  const allowList = allowCidrs(allow);
  if (allowList.some((c) => inCidr(parsed.bytes, parsed.family, c))) return false;
  let { family, bytes } = parsed;
  // ::ffff:a.b.c.d is the IPv4 host a.b.c.d on a dual-stack socket: judge it as such.
  if (family === 6 && inCidr(bytes, 6, MAPPED_V6)) {
    bytes = bytes.subarray(12);
    family = 4;
    if (allowList.some((c) => inCidr(bytes, 4, c))) return false;
  }
  if (family === 4) return FORBIDDEN_V4.some((c) => inCidr(bytes, 4, c));
  if (!inCidr(bytes, 6, GLOBAL_UNICAST_V6)) return true;
  return FORBIDDEN_V6.some((c) => inCidr(bytes, 6, c));
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}
export type Resolver = (host: string) => Promise<ResolvedAddress[]>;

export const defaultResolver: Resolver = async (host) => {
  // verbatim keeps the resolver's order; all: true so every address can be checked.
  const found = await lookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * A URL a client supplied for a server-side request, parsed, or what is wrong with it:
 * not absolute, a scheme other than http(s), credentials in it, no host. The addresses
 * its host resolves to are judged separately (isForbiddenAddress), at connect time.
 */
export function urlProblem(raw: string): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a valid absolute URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `scheme ${url.protocol} is not allowed; use http or https`;
  if (url.username !== '' || url.password !== '') return 'credentials in the URL are not allowed';
  if (url.hostname === '') return 'the URL has no host';
  return url;
}
