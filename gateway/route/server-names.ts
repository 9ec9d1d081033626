import { compileRegex } from './regex.js';

// nginx server_name forms, and how a Host picks a virtual host on a listener
// (ngx_http_find_virtual_server): an exact name first, then the longest wildcard that
// starts with `*` (`*.example.com`, also any name deeper under it), then the longest
// that ends with `*` (`mail.*`), then the first regex (`~...`, case-insensitive) in file
// order; none matching, the listener's default virtual host. `.example.com` is
// example.com and *.example.com in one, ranking as a wildcard. `""` matches a request
// without Host. Names are compared lower-case; Hosts arrive lower-cased (host-header.ts).

export type ServerName =
  | { readonly kind: 'exact'; readonly name: string }
  | { readonly kind: 'start'; readonly suffix: string }
  | { readonly kind: 'dotted'; readonly name: string }
  | { readonly kind: 'end'; readonly prefix: string }
  | { readonly kind: 'regex'; readonly re: RegExp }
  | { readonly kind: 'empty' };

const LABELS = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** The parsed name, or why nginx would refuse it. */
export function parseServerName(text: string): ServerName | string {
  if (text === '') return { kind: 'empty' };
  if (text.startsWith('~')) {
    const re = compileRegex(text.slice(1), { caseInsensitive: true });
    return typeof re === 'string' ? re : { kind: 'regex', re };
  }
  const s = text.toLowerCase();
  const bad = `${JSON.stringify(text)} is not a server name: use a name, *.name, name.*, .name, ~regex or ""`;
  if (s.startsWith('*.')) return LABELS.test(s.slice(2)) ? { kind: 'start', suffix: s.slice(1) } : bad;
  if (s.endsWith('.*')) return LABELS.test(s.slice(0, -2)) ? { kind: 'end', prefix: s.slice(0, -1) } : bad;
  if (s.startsWith('.')) return LABELS.test(s.slice(1)) ? { kind: 'dotted', name: s.slice(1) } : bad;
  // An IP literal in brackets, a plain name, or nginx's customary never-matching `_`.
  if (/^\[[0-9a-f:.]+\]$/.test(s) || LABELS.test(s)) return { kind: 'exact', name: s };
  return bad;
}

/** A key that says when two names on one listener claim the same Hosts (regexes never collide). */
export function nameKey(n: ServerName): string | undefined {
  switch (n.kind) {
    case 'exact': return `=${n.name}`;
    case 'start': return `*${n.suffix}`;
    case 'dotted': return `*.${n.name}`;
    case 'end': return `${n.prefix}*`;
    case 'empty': return '""';
    case 'regex': return undefined;
  }
}

/** The virtual hosts on one listener, by name. */
export class HostTable<V> {
  private readonly exact = new Map<string, V>();
  private readonly dotted = new Map<string, V>();
  private readonly starts = new Map<string, V>();
  private readonly ends = new Map<string, V>();
  private readonly regexes: { re: RegExp; v: V }[] = [];
  private empty: V | undefined;
  /** When one virtual host is all there is, every Host gets it without a look. */
  private readonly only: V | undefined;

  constructor(hosts: readonly { readonly names: readonly ServerName[]; readonly v: V }[], readonly fallback: V) {
    for (const { names, v } of hosts) {
      for (const n of names) {
        // The first claim stands (nginx warns and ignores the later one; the config check refuses it).
        if (n.kind === 'exact' && !this.exact.has(n.name)) this.exact.set(n.name, v);
        else if (n.kind === 'dotted' && !this.dotted.has(n.name)) this.dotted.set(n.name, v);
        else if (n.kind === 'start' && !this.starts.has(n.suffix)) this.starts.set(n.suffix, v);
        else if (n.kind === 'end' && !this.ends.has(n.prefix)) this.ends.set(n.prefix, v);
        else if (n.kind === 'regex') this.regexes.push({ re: n.re, v });
        else if (n.kind === 'empty') this.empty ??= v;
      }
    }
    this.only = hosts.length === 1 && hosts[0]!.v === fallback ? fallback : undefined;
  }

  find(host: string): V {
    if (this.only !== undefined) return this.only;
    if (host === '') return this.empty ?? this.fallback;
    const exact = this.exact.get(host);
    if (exact !== undefined) return exact;
    if (this.dotted.size > 0 || this.starts.size > 0) {
      // Longest first: the whole name (for .name), then from each dot, left to right.
      const d = this.dotted.get(host);
      if (d !== undefined) return d;
      for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
        const tail = host.slice(i);
        const v = this.starts.get(tail) ?? this.dotted.get(tail.slice(1));
        if (v !== undefined) return v;
      }
    }
    if (this.ends.size > 0) {
      for (let i = host.lastIndexOf('.'); i > 0; i = host.lastIndexOf('.', i - 1)) {
        const v = this.ends.get(host.slice(0, i + 1));
        if (v !== undefined) return v;
      }
    }
    for (const { re, v } of this.regexes) if (re.test(host)) return v;
    return this.fallback;
  }
}
