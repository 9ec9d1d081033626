// The requests --verify sends to both sides: for every server, each of its names and
// ports; for every location, paths that land in it (exact paths, prefixes and their
// children, strings matching each regex) and next to it (strings that do not match, the
// prefix without its slash); the encoding tricks (%2e%2e, //, case); several methods;
// a WebSocket upgrade where the location passes one.

import { regexExample } from './regex-example.js';
import { pcreToJs } from '../regex.js';
import type { Scope } from '../scope.js';

export interface VerifyRequest {
  /** The server (as the report names it) the request was made for: where nginx should answer it. */
  readonly server: string;
  /** Listener key (`host:port`) the request goes to. */
  readonly listener: string;
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly websocket: boolean;
}

export interface ServerTargets {
  readonly server: Scope;
  readonly name: string;
  /** Listener keys of this server. */
  readonly listeners: readonly string[];
  /** True for a default server of some listener: it also gets a name no server has. */
  readonly isDefault: boolean;
}

export const MAX_REQUESTS = 4000;

export function generateRequests(servers: readonly ServerTargets[]): VerifyRequest[] {
  const out = new Map<string, VerifyRequest>();
  const add = (r: VerifyRequest): void => { out.set(`${r.listener} ${r.host} ${r.method} ${r.path} ${r.websocket}`, r); };
  for (const t of servers) {
    const hosts = hostsOf(t.server);
    if (t.isDefault || hosts.length === 0) hosts.push('unknown-host.invalid');
    const paths = pathsOf(t.server);
    const ws = websocketPaths(t.server);
    t.listeners.forEach((listener, li) => {
      // Every name on the first port; the first name (and the unknown one) on the others.
      const names = li === 0 ? hosts : [...new Set([hosts[0]!, hosts[hosts.length - 1]!])];
      for (const host of names) {
        for (const p of paths.all) add({ server: t.name, listener, host, method: 'GET', path: p, websocket: false });
        for (const p of paths.firsts) {
          for (const method of ['HEAD', 'POST', 'DELETE', 'OPTIONS']) add({ server: t.name, listener, host, method, path: p, websocket: false });
        }
        for (const p of ws) add({ server: t.name, listener, host, method: 'GET', path: p, websocket: true });
      }
    });
  }
  const all = [...out.values()];
  if (all.length <= MAX_REQUESTS) return all;
  // Too many: an even sample, the same one every run.
  const step = all.length / MAX_REQUESTS;
  return Array.from({ length: MAX_REQUESTS }, (_, k) => all[Math.floor(k * step)]!);
}

function hostsOf(server: Scope): string[] {
  const out: string[] = [];
  for (const n of server.own.serverNames) {
    if (n.startsWith('~')) {
      const re = pcreToJs(n.slice(1));
      const ex = re.ok ? regexExample(re.source) : undefined;
      if (ex !== undefined && /^[a-z0-9.-]+$/i.test(ex) && new RegExp(re.ok ? re.source : '', re.ok && re.caseless ? 'i' : '').test(ex)) out.push(ex.toLowerCase());
    } else if (n.startsWith('*.')) out.push(`verify${n.slice(1)}`);
    else if (n.endsWith('.*')) out.push(`${n.slice(0, -2)}.verify`);
    else out.push(n);
  }
  return [...new Set(out)];
}

function locations(sc: Scope): Scope[] {
  return sc.children.filter((c) => c.kind === 'location').flatMap((c) => [c, ...locations(c)]);
}

function pathsOf(server: Scope): { all: string[]; firsts: string[] } {
  const all = new Set<string>(['/', '/verify-unknown/x', '/./verify', '/a/../', '//', '/%2e%2e/verify', '/x%2Fy']);
  const firsts: string[] = ['/'];
  for (const loc of locations(server)) {
    const [a, b] = loc.d!.args as [string, string | undefined];
    const kind = b === undefined ? (a.startsWith('@') ? 'named' : 'prefix') : a === '=' ? 'exact' : a === '^~' ? 'prefix' : 'regex';
    const path = b ?? a;
    const mine: string[] = [];
    if (kind === 'exact') mine.push(path, `${path}/`, `${path}?q=1`, path.toUpperCase());
    else if (kind === 'prefix') {
      const dir = path.endsWith('/') ? path : `${path}/`;
      mine.push(path, `${dir}verify`, `${dir}verify/child.txt?q=1`, `${path}x`, path.toUpperCase(), `${dir}%2e%2e/verify`, `${dir}/verify`, `${dir}./verify`, `${dir}.env`, `${dir}.git/config`);
      if (path.endsWith('/') && path.length > 1) mine.push(path.slice(0, -1), `${path.slice(0, -1)}?q=1`);
    } else if (kind === 'regex') {
      const re = pcreToJs(path);
      if (re.ok) {
        const rx = new RegExp(re.source, a === '~*' || re.caseless ? 'i' : '');
        const ex = regexExample(re.source);
        const cands = ex === undefined ? [] : [ex, `/${ex}`, `/verify/${ex}`, `/verify${ex}`].map((c) => c.replace(/\/{2,}/g, '/'));
        // Nested in a prefix location: it is only tried under that prefix.
        const parent = loc.parent?.kind === 'location' ? loc.parent.d!.args[loc.parent.d!.args.length - 1]! : undefined;
        if (parent !== undefined && ex !== undefined) cands.unshift(`${parent.endsWith('/') ? parent : `${parent}/`}verify${ex}`.replace(/\/{2,}/g, '/'), `${parent}${ex}`.replace(/\/{2,}/g, '/'));
        const hit = cands.find((c) => c.startsWith('/') && rx.test(c));
        if (hit !== undefined) {
          const enc = encodeURI(hit);
          mine.push(enc, `${enc}x`, `/verify${enc}`, enc.toUpperCase());
          const parts = enc.split('/');
          if (parts.length > 2) mine.push(`${parts.slice(0, -1).join('/')}//${parts[parts.length - 1]}`);
        }
        mine.push('/verify-nomatch.txt');
      }
    }
    for (const p of mine) all.add(p);
    if (mine[0] !== undefined) firsts.push(mine[0]);
  }
  return { all: [...all], firsts };
}

function websocketPaths(server: Scope): string[] {
  const out: string[] = [];
  for (const loc of locations(server)) {
    const edits = loc.effective('proxySetHeader') ?? [];
    if (!edits.some((e) => e.name === 'upgrade')) continue;
    const [a, b] = loc.d!.args as [string, string | undefined];
    if (b === undefined) out.push(a.startsWith('@') ? '' : a);
    else if (a === '=' || a === '^~') out.push(b);
    else {
      const re = pcreToJs(b);
      const ex = re.ok ? regexExample(re.source) : undefined;
      if (ex !== undefined && ex.startsWith('/')) out.push(encodeURI(ex));
    }
  }
  return out.filter((p) => p !== '');
}
