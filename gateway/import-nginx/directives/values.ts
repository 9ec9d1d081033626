// nginx value syntaxes shared by several handlers.

/** nginx time syntax: `10`, `10s`, `500ms`, `1m30s`, units ms s m h d (a bare number is seconds). */
export function nginxTimeMs(v: string): number | undefined {
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  let total = 0;
  let rest = v;
  while (rest !== '') {
    const m = /^(\d+)(ms|s|m|h|d)/.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return v === '' ? undefined : total;
}

/** nginx size syntax: `1024`, `10k`, `25m`, `1g` → bytes. */
export function nginxSizeBytes(v: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  if (m === null) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

/** `host`, `host:port`, `[v6]:port`, with nginx's default port. */
export function withPort(addr: string, def = 80): string {
  if (/^\[[^\]]+\]:\d+$/.test(addr) || /^[^:[\]]+:\d+$/.test(addr)) return addr;
  return `${addr}:${def}`;
}
