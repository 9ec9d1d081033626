// IP addresses and CIDR blocks as nginx's allow/deny and set_real_ip_from read them, v4
// and v6 alike. An address is kept as 16 bytes (a v4 one as ::ffff:a.b.c.d), so one
// comparison serves both families, and printed the way nginx prints $remote_addr: v4
// dotted, v6 in RFC 5952 form, a v4-mapped v6 peer (a dual-stack socket) as plain v4.

export type Bytes = Uint8Array;

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The address as 16 bytes, or undefined when it is not a literal v4 or v6 address. */
export function parseIp(text: string): Bytes | undefined {
  const v4 = V4.exec(text);
  if (v4 !== null) {
    const out = new Uint8Array(16);
    out.set(V4_MAPPED_PREFIX);
    for (let i = 0; i < 4; i++) {
      const n = Number(v4[i + 1]);
      if (n > 255 || (v4[i + 1]!.length > 1 && v4[i + 1]![0] === '0')) return undefined;
      out[12 + i] = n;
    }
    return out;
  }
  return parseV6(text);
}

function parseV6(text: string): Bytes | undefined {
  if (text.length < 2 || text.length > 45 || !text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIp(p);
        if (v4 === undefined || !isV4Mapped(v4)) return undefined;
        out.push((v4[12]! << 8) | v4[13]!, (v4[14]! << 8) | v4[15]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => { out[2 * i] = g >> 8; out[2 * i + 1] = g & 0xff; });
  return out;
}

export function isV4Mapped(b: Bytes): boolean {
  for (let i = 0; i < 12; i++) if (b[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

/** As nginx prints $remote_addr: dotted v4 (also for a v4-mapped v6), else RFC 5952 v6. */
export function formatIp(b: Bytes): string {
  if (isV4Mapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  // The longest run of two or more zero groups becomes ::, the first such run on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * A block of addresses: the bits of `net` that count (`bits` of 128; a v4 /n is /96+n),
 * and its family: as in nginx, a v6 block never covers a v4 client (nor a v4-mapped one),
 * and `all` (family 0) covers both.
 */
export interface Cidr {
  readonly net: Bytes;
  readonly bits: number;
  readonly family: 0 | 4 | 6;
}

/**
 * `10.0.0.0/8`, `2001:db8::/32`, a lone address (all its bits), or `all` (both
 * families). Host bits set under the mask are refused, as nginx warns that they are
 * ignored ("low address bits ... are meaningless") and a typo there usually means the
 * wrong block.
 */
export function parseCidr(text: string): Cidr | string {
  if (text === 'all') return { net: new Uint8Array(16), bits: 0, family: 0 };
  const slash = text.indexOf('/');
  const addr = parseIp(slash === -1 ? text : text.slice(0, slash));
  if (addr === undefined) return `${JSON.stringify(text)} is not an address or CIDR block (like 10.0.0.0/8 or 2001:db8::/32)`;
  const v4 = isV4Mapped(addr) && !text.slice(0, slash === -1 ? undefined : slash).includes(':');
  const max = v4 ? 32 : 128;
  let len = max;
  if (slash !== -1) {
    const m = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(m) || Number(m) > max) return `${JSON.stringify(text)}: the prefix length must be 0 to ${max}`;
    len = Number(m);
  }
  const bits = v4 ? 96 + len : len;
  for (let i = bits; i < 128; i++) {
    if ((addr[i >> 3]! >> (7 - (i & 7))) & 1) return `${JSON.stringify(text)}: has bits set past /${len} (did you mean ${formatIp(masked(addr, bits))}/${len}?)`;
  }
  return { net: addr, bits, family: v4 ? 4 : 6 };
}

function masked(addr: Bytes, bits: number): Bytes {
  const out = new Uint8Array(addr);
  for (let i = bits; i < 128; i++) out[i >> 3]! &= ~(1 << (7 - (i & 7)));
  return out;
}

export function inCidr(addr: Bytes, c: Cidr): boolean {
  if (c.family !== 0 && (c.family === 4) !== isV4Mapped(addr)) return false;
  const whole = c.bits >> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== c.net[i]) return false;
  const rest = c.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[whole]! & mask) === (c.net[whole]! & mask);
}

export function inAnyCidr(addr: Bytes, list: readonly Cidr[]): boolean {
  for (let i = 0; i < list.length; i++) if (inCidr(addr, list[i]!)) return true;
  return false;
}
