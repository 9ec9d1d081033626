import type { RequestContext } from '../pipeline/context.js';
import type { CompiledRoute } from './compiled-route.js';

// One level of routes (a virtual host's, or those nested in one route), matched by
// nginx's location rules (ngx_http_core_find_location):
//  1. an exact route for the path ends the search;
//  2. else the longest prefix route that matches is remembered; its nested routes are
//     searched the same way, and an exact or regex route found there ends the search;
//  3. unless that prefix route has prefix_priority (nginx ^~), this level's regex routes
//     are tried in file order, and the first that matches wins (its nested routes are
//     searched in turn);
//  4. else the prefix route remembered (the deepest one, when nested ones matched).
// And nginx's auto_redirect: a path that is a proxying route's path without its final /,
// where no exact or prefix route is that path, gets a 301 to the path with the /.
//
// A route whose methods or headers do not match the request is, for this request, not
// there: the search goes on as if it were never written. Routes with the same path are
// tried in file order, the first whose conditions hold standing for that path.
//
// Built once: an exact map, the prefixes sorted with each one's longest shorter prefix
// (so the longest match is a binary search and a short walk up that chain, no scan), the
// regexes last, and a map of auto-redirect paths.

/** What a search found (ctx.compiledRoute, ctx.captures hold it). */
export const NONE = 0;
/** An exact or regex route: final. */
export const FINAL = 1;
/** A prefix route: regexes of the levels above may still win. */
export const PREFIX = 2;
/** An auto-redirect: answer 301, search no further. */
export const REDIRECT = 3;
export type Found = typeof NONE | typeof FINAL | typeof PREFIX | typeof REDIRECT;

interface PrefixEntry {
  readonly prefix: string;
  /** Routes with this prefix, in file order. */
  readonly routes: readonly CompiledRoute[];
  readonly noregex: boolean;
  /** Index of the longest other prefix that is a prefix of this one, or -1. */
  parent: number;
}

export class PathLevel {
  private readonly exact = new Map<string, CompiledRoute[]>();
  private readonly prefixes: PrefixEntry[];
  private readonly regexes: CompiledRoute[];
  private readonly redirects = new Map<string, CompiledRoute[]>();
  /** The entry longestPrefix() found: a field, not a returned pair, so a request allocates nothing. */
  private hit: PrefixEntry | undefined = undefined;

  constructor(routes: readonly CompiledRoute[]) {
    const byPrefix = new Map<string, CompiledRoute[]>();
    const regexes: CompiledRoute[] = [];
    for (const r of routes) {
      const c = r.config;
      if (c.exact !== undefined) push(this.exact, bytes(c.exact), r);
      else if (c.prefix !== undefined) push(byPrefix, bytes(c.prefix), r);
      else regexes.push(r);
      if (r.autoRedirect) push(this.redirects, bytes((c.exact ?? c.prefix)!).slice(0, -1), r);
    }
    this.regexes = regexes;
    this.prefixes = [...byPrefix].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([prefix, rs]) => ({ prefix, routes: rs, noregex: rs[0]!.config.prefix_priority === true, parent: -1 }));
    // Each prefix's longest shorter prefix: in sorted order it is on the stack of open ancestors.
    const stack: number[] = [];
    this.prefixes.forEach((e, i) => {
      while (stack.length > 0 && !e.prefix.startsWith(this.prefixes[stack[stack.length - 1]!]!.prefix)) stack.pop();
      e.parent = stack.length > 0 ? stack[stack.length - 1]! : -1;
      stack.push(i);
    });
  }

  /** Searches this level (and the nested ones) for `uri`; the winner goes into ctx. */
  find(uri: string, ctx: RequestContext): Found {
    if (this.exact.size > 0) {
      const ex = this.exact.get(uri);
      const r = ex === undefined ? undefined : firstMatching(ex, ctx);
      if (r !== undefined) {
        ctx.compiledRoute = r;
        ctx.captures = undefined;
        return FINAL;
      }
    }
    let found: Found = NONE;
    let noregex = false;
    const p = this.longestPrefix(uri, ctx);
    const entry = this.hit;
    if (this.redirects.size > 0 && (p === undefined || entry!.prefix !== uri)) {
      const rd = this.redirects.get(uri);
      const r = rd === undefined ? undefined : firstMatching(rd, ctx);
      if (r !== undefined) {
        ctx.compiledRoute = r;
        return REDIRECT;
      }
    }
    if (p !== undefined) {
      ctx.compiledRoute = p;
      ctx.captures = undefined;
      found = PREFIX;
      noregex = entry!.noregex;
      if (p.children !== undefined) {
        const nested = p.children.find(uri, ctx);
        if (nested === FINAL || nested === REDIRECT) return nested;
      }
    }
    if (noregex) return found;
    const rx = this.regexes;
    for (let i = 0; i < rx.length; i++) {
      const r = rx[i]!;
      if (!r.regex!.test(uri) || (r.conditions !== undefined && !r.conditions(ctx))) continue;
      ctx.compiledRoute = r;
      ctx.captures = r.needsCaptures ? r.regex!.exec(uri)! : undefined;
      // Routes nested in a regex route are regexes (config check): one that matches wins.
      r.children?.find(uri, ctx);
      return FINAL;
    }
    return found;
  }

  /** The route of the longest prefix that matches and has a route whose conditions hold (its entry: this.hit). */
  private longestPrefix(uri: string, ctx: RequestContext): CompiledRoute | undefined {
    const ps = this.prefixes;
    if (ps.length === 0) return undefined;
    // The greatest prefix <= uri: the longest prefix of uri is it or on its parent chain.
    let lo = 0;
    let hi = ps.length - 1;
    let i = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ps[mid]!.prefix <= uri) { i = mid; lo = mid + 1; } else hi = mid - 1;
    }
    for (; i !== -1; i = ps[i]!.parent) {
      const e = ps[i]!;
      if (!uri.startsWith(e.prefix)) continue;
      const r = firstMatching(e.routes, ctx);
      if (r !== undefined) {
        this.hit = e;
        return r;
      }
    }
    return undefined;
  }
}

function firstMatching(routes: readonly CompiledRoute[], ctx: RequestContext): CompiledRoute | undefined {
  for (let i = 0; i < routes.length; i++) {
    const r = routes[i]!;
    if (r.conditions === undefined || r.conditions(ctx)) return r;
  }
  return undefined;
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list === undefined) m.set(k, [v]);
  else list.push(v);
}

/** A config path as the normalised path holds it: one character per byte (request-target.ts). */
export function bytes(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\x7f]/.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}
