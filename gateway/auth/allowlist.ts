import { BlockList, isIP } from 'node:net';

// A key's client-address allowlist, as node:net's BlockList: built once when the key's
// identity is loaded, checked per request without allocating.

/** The problem with one CIDR, or undefined when it is sound. */
export function cidrProblem(cidr: string): string | undefined {
  const [address, bits, ...rest] = cidr.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return `${JSON.stringify(cidr)} is not an IPv4 or IPv6 address or CIDR`;
  const max = family === 4 ? 32 : 128;
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > max)) return `${JSON.stringify(cidr)}: the prefix length must be 0..${max}`;
  return undefined;
}

export function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const [address, bits] = c.split('/') as [string, string | undefined];
    const family = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    list.addSubnet(address, bits === undefined ? (family === 'ipv4' ? 32 : 128) : Number(bits), family);
  }
  return list;
}

/** Whether `address` (as a socket reports it, IPv4-mapped IPv6 included) is in the list. */
export function allowed(list: BlockList, address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6 && address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return list.check(address.slice(7), 'ipv4');
  return list.check(address, family === 4 ? 'ipv4' : 'ipv6');
}
