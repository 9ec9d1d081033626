// One routing scenario written once and rendered twice, as an nginx config and as Sluice
// routes, plus the requests to send both: paths and Hosts generated from the scenario
// itself (every location's path, samples of every regex, and the encoding and traversal
// tricks applied to all of them), so the comparison covers what the config says rather
// than a hand-picked list.

export type OMatch =
  | { readonly exact: string }
  | { readonly prefix: string; readonly priority?: boolean }
  | { readonly regex: string; readonly ci?: boolean };

export type OAction =
  | { readonly proxy: true; readonly uri?: string }
  | { readonly deny: true }
  | { readonly return: number; readonly location?: string };

export interface OLocation {
  /** The route's name, and the X-Route header the echo upstream reports. */
  readonly name: string;
  readonly match: OMatch;
  readonly action: OAction;
  readonly nested?: readonly OLocation[];
}

export interface OServer {
  readonly name: string;
  readonly names: readonly string[];
  readonly isDefault?: boolean;
  readonly locations: readonly OLocation[];
}

// ---- rendering ------------------------------------------------------------------------

/** The `server` blocks of an nginx.conf; @@LISTEN@@ is the harness's listen address. */
export function nginxServers(servers: readonly OServer[], echoOrigin: string): string {
  const loc = (l: OLocation, indent: string): string => {
    const m = l.match;
    const head = 'exact' in m ? `= ${m.exact}` : 'prefix' in m ? `${m.priority === true ? '^~ ' : ''}${m.prefix}` : `${m.ci === true ? '~*' : '~'} ${m.regex}`;
    const a = l.action;
    const body: string[] = [];
    if ('proxy' in a) body.push(`proxy_pass ${echoOrigin}${a.uri ?? ''};`, 'proxy_set_header Host $host;', `proxy_set_header X-Route ${l.name};`);
    else if ('deny' in a) body.push('deny all;', `proxy_pass ${echoOrigin};`);
    else body.push(`return ${a.return}${a.location === undefined ? '' : ` ${a.location}`};`);
    const nested = (l.nested ?? []).map((n) => loc(n, `${indent}  `)).join('');
    return `${indent}location ${head} {\n${indent}  ${body.join(`\n${indent}  `)}\n${nested}${indent}}\n`;
  };
  return servers.map((s) => `  server {
    listen @@LISTEN@@${s.isDefault === true ? ' default_server' : ''};
    server_name ${s.names.map((n) => (n === '' ? '""' : n)).join(' ')};
${s.locations.map((l) => loc(l, '    ')).join('')}  }
`).join('');
}

/** The same scenario as Sluice virtual hosts (every route public, proxying to `upstream`). */
export function sluiceVirtualHosts(servers: readonly OServer[], upstream: string): object[] {
  const route = (l: OLocation): Record<string, unknown> => {
    const m = l.match;
    const r: Record<string, unknown> = { name: l.name, public: true };
    if ('exact' in m) r.exact = m.exact;
    else if ('prefix' in m) {
      r.prefix = m.prefix;
      if (m.priority === true) r.prefix_priority = true;
    } else {
      r.regex = m.regex;
      if (m.ci === true) r.case_insensitive = true;
    }
    const a = l.action;
    if ('return' in a) r.return = { status: a.return, ...(a.location === undefined ? {} : { location: a.location }) };
    else {
      r.upstream = upstream;
      r.host = '$host';
      r.request_headers = { set: { 'x-route': l.name } };
      if ('deny' in a) r.access = [{ deny: 'all' }];
      if ('proxy' in a && a.uri !== undefined) r.rewrite = { replace_prefix: a.uri };
    }
    if (l.nested !== undefined) r.routes = l.nested.map(route);
    return r;
  };
  return servers.map((s) => ({
    name: s.name,
    server_names: s.names,
    ...(s.isDefault === true ? { default_for: ['default'] } : {}),
    routes: s.locations.map(route),
  }));
}

// ---- requests -------------------------------------------------------------------------

/**
 * Strings a regex of the scenario's subset matches: literals and escapes (\. \d \w \/),
 * `.`, classes (their first member), groups with alternatives (each), and ?, +, * (with
 * and without the repeat). Anchors are dropped: a sample goes into a path where the
 * pattern should find it.
 */
export function regexSamples(pattern: string, limit = 8): string[] {
  let i = 0;
  const seq = (): string[] => {
    let out = [''];
    while (i < pattern.length && pattern[i] !== ')' && pattern[i] !== '|') {
      let atom: string[];
      const c = pattern[i]!;
      if (c === '^' || c === '$') { i++; continue; }
      if (c === '(') {
        i++;
        if (pattern.startsWith('?:', i)) i += 2;
        atom = [];
        for (;;) {
          atom.push(...seq());
          if (pattern[i] === '|') { i++; continue; }
          i++;
          break;
        }
      } else if (c === '\\') {
        const e = pattern[i + 1]!;
        atom = [e === 'd' ? '7' : e === 'w' ? 'w' : e];
        i += 2;
      } else if (c === '[') {
        const end = pattern.indexOf(']', i);
        const first = pattern[i + 1] === '^' ? 'q' : pattern[i + 1]!;
        atom = [first];
        i = end + 1;
      } else if (c === '.') {
        atom = ['q'];
        i++;
      } else {
        atom = [c];
        i++;
      }
      const q = pattern[i];
      if (q === '?') { atom = ['', ...atom]; i++; } else if (q === '+') { atom = [...atom, ...atom.map((a) => a + a)]; i++; } else if (q === '*') { atom = ['', ...atom]; i++; }
      out = out.flatMap((o) => atom.map((a) => o + a)).slice(0, limit);
    }
    return out;
  };
  return [...new Set(seq())].slice(0, limit);
}

function every(locs: readonly OLocation[]): OLocation[] {
  return locs.flatMap((l) => [l, ...every(l.nested ?? [])]);
}

/** Paths made from a server's locations, then put through the tricks. */
export function pathsFor(server: OServer): string[] {
  const locs = every(server.locations);
  const literal = locs.flatMap((l) => ('exact' in l.match ? [l.match.exact] : 'prefix' in l.match ? [l.match.prefix] : []));
  const samples = locs.flatMap((l) => ('regex' in l.match ? regexSamples(l.match.regex).map((s) => (l.match as { ci?: boolean }).ci === true ? [s, s.toUpperCase()] : [s]).flat() : []));
  const base = new Set<string>(['/', '/nothing/here']);
  for (const p of literal) {
    for (const v of [p, `${p}x`, `${p}a/b`, p.endsWith('/') && p.length > 1 ? p.slice(0, -1) : `${p}/`]) base.add(v);
  }
  for (const s of samples) {
    const abs = s.startsWith('/') ? s : `/${s}`;
    base.add(abs);
    base.add(`/q${s.startsWith('/') ? s : `/f${s}`}`);
    for (const p of literal) base.add(`${p.endsWith('/') ? p : `${p}/`}${s.replace(/^\//, '')}`);
  }
  const out = new Set<string>();
  for (const p of base) {
    out.add(p);
    for (const t of TRICKS) {
      const v = t(p);
      if (v !== undefined && v.startsWith('/')) out.add(v);
    }
  }
  return [...out];
}

/** Encoding and traversal tricks: each turns a path into another that nginx normalises (or refuses). */
export const TRICKS: readonly ((p: string) => string | undefined)[] = [
  (p) => p.replace(/^\/([^/]*)\//, '/$1//'),
  (p) => `//${p.slice(1)}`,
  (p) => p.replace(/\/([^/]*)$/, '/./$1'),
  (p) => `/zz/..${p}`,
  (p) => `/zz/%2e%2E${p}`,
  (p) => `/zz/.%2e${p}`,
  (p) => { const i = p.search(/[a-z]/i); return i === -1 ? undefined : `${p.slice(0, i)}%${p.charCodeAt(i).toString(16)}${p.slice(i + 1)}`; },
  (p) => p.toUpperCase(),
  (p) => `${p}?q=1&a=%20`,
  (p) => `${p}/..`,
  (p) => `/..${p}`,
  (p) => p.replace(/\/$/, '%2F'),
  (p) => (p.length > 2 ? `${p}%20sp%41ce` : undefined),
  (p) => `${p}%00`,
];

/** Hosts made from server names: each name in its forms, case and port variants, and names nobody claims. */
export function hostsFor(servers: readonly OServer[], port: number): { host: string; server: string | undefined }[] {
  const out: { host: string; server: string | undefined }[] = [];
  for (const s of servers) {
    for (const n of s.names) {
      if (n === '' || n === '_') continue;
      if (n.startsWith('~')) for (const h of regexSamples(n.slice(1), 3)) out.push({ host: h, server: s.name }, { host: h.toUpperCase(), server: s.name });
      else if (n.startsWith('*.')) out.push({ host: `w${n.slice(1)}`, server: s.name }, { host: `a.b${n.slice(1)}`, server: s.name });
      else if (n.endsWith('.*')) out.push({ host: `${n.slice(0, -1)}org`, server: s.name }, { host: `${n.slice(0, -1)}a.b`, server: s.name });
      else if (n.startsWith('.')) out.push({ host: n.slice(1), server: s.name }, { host: `w${n}`, server: s.name });
      else out.push({ host: n, server: s.name }, { host: `${n.toUpperCase()}:${port}`, server: s.name }, { host: `${n}.`, server: s.name });
    }
  }
  out.push({ host: 'nobody.invalid', server: undefined }, { host: `127.0.0.1:${port}`, server: undefined });
  return out;
}
