import type { RouteConfig } from '../config/types.js';
import { compileAccess, type AccessCheck } from './access.js';
import { compileConditions, type Condition } from './conditions.js';
import { compileHeaderEdits, type HeaderEdits } from './header-edits.js';
import { compileReturn, type LocalAnswer } from './local-answer.js';
import { PathLevel } from './path-level.js';
import { compileRegex } from './regex.js';
import { compileRewrite, type PathRewrite } from './rewrite.js';
import { compileTemplate } from './template.js';
import { compileUpstreamHost, type UpstreamHost } from './upstream-host.js';

/** Per-route upstream timeouts, each undefined where the upstream's own applies. */
export interface RouteTimeouts {
  readonly connectMs: number | undefined;
  readonly headersMs: number | undefined;
  readonly bodyMs: number | undefined;
}

/**
 * A route as the request path runs it: its config (ctx.route), and everything built from
 * it once at config load, so a request does no parsing: its path regex and conditions,
 * its nested routes' matcher, and each action compiled (undefined where the route has none).
 */
export class CompiledRoute {
  readonly conditions: Condition | undefined;
  /** The path regex of a regex route, compiled for the linear-time fallback (regex.ts). */
  readonly regex: RegExp | undefined;
  /** Whether anything the route does reads $1..$9 (else the regex is tested, not executed). */
  readonly needsCaptures: boolean;
  readonly children: PathLevel | undefined;
  readonly access: AccessCheck | undefined;
  readonly answer: LocalAnswer | undefined;
  readonly rewrite: PathRewrite | undefined;
  readonly upstreamHost: UpstreamHost;
  readonly requestEdits: HeaderEdits | undefined;
  readonly responseEdits: HeaderEdits | undefined;
  readonly timeouts: RouteTimeouts | undefined;
  /** nginx's auto_redirect: a proxying route whose path ends in / answers that path without the / with a 301 to it. */
  readonly autoRedirect: boolean;

  constructor(readonly config: RouteConfig) {
    const r = config;
    this.conditions = compileConditions(r);
    this.regex = r.regex === undefined ? undefined : compileRegex(r.regex, { caseInsensitive: r.case_insensitive === true }) as RegExp;
    this.needsCaptures = this.regex !== undefined && usesCaptures(r);
    this.children = r.routes.length === 0 ? undefined : new PathLevel(r.routes.map((c) => new CompiledRoute(c)));
    this.access = r.access === undefined ? undefined : compileAccess(r.access);
    this.answer = r.return === undefined ? undefined : compileReturn(r.return);
    this.rewrite = r.rewrite === undefined ? undefined : compileRewrite(r.rewrite, r.rewrite_base);
    this.upstreamHost = compileUpstreamHost(r.host);
    this.requestEdits = r.request_headers === undefined ? undefined : compileHeaderEdits(r.request_headers);
    this.responseEdits = r.response_headers === undefined ? undefined : compileHeaderEdits(r.response_headers);
    const t = r.timeouts;
    this.timeouts = t === undefined ? undefined : { connectMs: t.connect_ms, headersMs: t.headers_ms, bodyMs: t.body_ms };
    const path = r.prefix ?? r.exact;
    this.autoRedirect = r.upstream !== undefined && r.return === undefined && path !== undefined && path.length > 1 && path.endsWith('/');
  }
}

/** Every template of the route (but a rewrite regex's replacement, whose $N are its own captures). */
export function routeTemplates(r: Pick<RouteConfig, 'return' | 'host' | 'request_headers' | 'response_headers'>): string[] {
  const ret = r.return;
  return [
    ...(ret === undefined ? [] : [ret.location, ret.body, ret.error?.message, ...Object.values(ret.headers ?? {})]),
    r.host,
    ...Object.values(r.request_headers?.set ?? {}), ...Object.values(r.request_headers?.add ?? {}),
    ...Object.values(r.response_headers?.set ?? {}), ...Object.values(r.response_headers?.add ?? {}),
  ].filter((s): s is string => s !== undefined);
}

function usesCaptures(r: RouteConfig): boolean {
  return routeTemplates(r).some((s) => {
    const t = compileTemplate(s);
    return !Array.isArray(t) && t.maxCapture > 0;
  });
}
