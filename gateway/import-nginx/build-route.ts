// One nginx location → one Sluice route (with nginx's precedence, which the gateway's
// router shares), or a route that answers exactly its paths with 501 not_migrated when
// what the location does cannot be translated. Never nothing: a location left out would
// hand its requests to a broader route without a word.

import type { Context } from './context.js';
import type { Directive } from './parse.js';
import { pcreToJs } from './regex.js';
import type { LocationReport, PlacedItem, RouteOutcome } from './report.js';
import type { HeaderEdit, LuaLimit, ReturnAction, Scope } from './scope.js';
import { resolveProxyPass } from './upstreams.js';
import { translateTemplate } from './variables.js';

export interface VhostContext {
  readonly name: string;
  /** Variables known at import time for this server ($server_name). */
  readonly constants: ReadonlyMap<string, string>;
  /** True when every listener is on its scheme's default port: redirects then carry no port, as nginx's do. */
  readonly defaultPorts: boolean;
  /** Route names taken so far (config-wide). */
  readonly names: Set<string>;
  /** Header directives already counted (one directive may serve many routes). */
  readonly counted: Set<Directive>;
  /** The zone a Lua limiter's limit uses (undefined: its rate is not a whole r/s or r/m). */
  readonly luaZone: (l: LuaLimit) => string | undefined;
}

export interface BuiltRoute {
  /** Undefined when no Sluice route can match the location's paths (the report says where they go). */
  readonly config: Record<string, unknown> | undefined;
  readonly report: LocationReport;
}

const NGINX_DEFAULT_BODY = 1024 * 1024;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

interface Match { readonly kind: 'exact' | 'prefix' | 'regex' | 'named'; readonly path: string; readonly priority: boolean; readonly caseless: boolean }

function matchOf(d: Directive): Match {
  const [a, b] = d.args as [string, string | undefined];
  if (b === undefined) return a.startsWith('@') ? { kind: 'named', path: a, priority: false, caseless: false } : { kind: 'prefix', path: a, priority: false, caseless: false };
  if (a === '=') return { kind: 'exact', path: b, priority: false, caseless: false };
  if (a === '^~') return { kind: 'prefix', path: b, priority: true, caseless: false };
  return { kind: 'regex', path: b, priority: false, caseless: a === '~*' };
}

function describe(m: Match): string {
  if (m.kind === 'exact') return `requests for exactly ${m.path}`;
  if (m.kind === 'prefix') return `requests whose path starts with ${m.path}${m.priority ? '' : ' that no regex location takes'}, unless a longer prefix or an exact location takes them`;
  if (m.kind === 'regex') return `requests whose path matches ${m.caseless ? '~*' : '~'} ${m.path}, unless an exact location, a ^~ prefix or an earlier regex takes them`;
  return 'none directly (reached only by error_page, try_files or another internal redirect)';
}

/** Every location of a server, in file order, as routes (nested prefix locations flattened, nested regexes kept under their prefix). */
export function buildLocations(server: Scope, vh: VhostContext, cx: Context): { routes: Record<string, unknown>[]; reports: LocationReport[] } {
  const routes: Record<string, unknown>[] = [];
  const reports: LocationReport[] = [];
  const visit = (loc: Scope, parent: Match | undefined, into: Record<string, unknown>[]): void => {
    const m = matchOf(loc.d!);
    const children = loc.children.filter((c) => c.kind === 'location');
    if (m.kind === 'named') {
      reports.push({ location: locText(loc.d!), at: cx.at(loc.d!), route: undefined, outcome: 'named', requests: describe(m), items: loc.items });
      // What is inside still counts as read: its settings are reported where they are.
      for (const c of children) visit(c, m, into);
      return;
    }
    const nestedInRegex = parent !== undefined && parent.kind !== 'prefix';
    const built = buildRoute(loc, m, vh, cx, nestedInRegex || (m.kind !== 'prefix' && children.length > 0)
      ? `nested locations under ${m.kind === 'regex' ? 'a regex' : 'an exact'} location are not translated`
      : undefined);
    if (built.config !== undefined) into.push(built.config);
    reports.push(built.report);
    const nested: Record<string, unknown>[] = [];
    for (const c of children) {
      const cm = matchOf(c.d!);
      // A regex inside a prefix is tried only when that prefix is the longest match, before
      // the server's own regexes: the contract's nested routes say exactly that.
      visit(c, m, m.kind === 'prefix' && cm.kind === 'regex' ? nested : into);
    }
    if (nested.length > 0 && built.config !== undefined) built.config.routes = nested;
    else if (nested.length > 0) into.push(...nested);
  };
  const locations = server.children.filter((c) => c.kind === 'location');
  for (const loc of locations) visit(loc, undefined, routes);
  routes.push(...slashRedirects(server, vh, cx));
  return { routes, reports };
}

const PASSES = /^(proxy|fastcgi|uwsgi|scgi|memcached|grpc)_pass\b/;

/**
 * nginx answers `/api` with a 301 to `/api/` when `location /api/` passes requests to a
 * backend (proxy_pass and its kin) and no location is named `/api` itself; before any
 * regex is tried. Sluice's router does the same for a proxying route, with a relative
 * Location; an exact route answers as nginx does (absolute_redirect on: scheme, host and a
 * port other than the scheme's own), and also for a location that became a local answer
 * (a not_migrated route for fastcgi_pass, say).
 */
function slashRedirects(server: Scope, vh: VhostContext, cx: Context): Record<string, unknown>[] {
  const all: Scope[] = [];
  const collect = (sc: Scope): void => { for (const c of sc.children) if (c.kind === 'location') { all.push(c); collect(c); } };
  collect(server);
  const named = new Set(all.map((l) => { const m = matchOf(l.d!); return m.kind === 'exact' || m.kind === 'prefix' ? m.path : ''; }));
  const out: Record<string, unknown>[] = [];
  for (const loc of all) {
    const m = matchOf(loc.d!);
    if (m.kind !== 'prefix' || m.path === '/' || !m.path.endsWith('/') || named.has(m.path.slice(0, -1))) continue;
    const passes = loc.own.proxyPass !== undefined || loc.own.blockers.some((b) => PASSES.test(b.directive));
    if (!passes) continue;
    const path = m.path.slice(0, -1);
    named.add(path);
    const route: Record<string, unknown> = { name: routeName(vh, { kind: 'exact', path, priority: false, caseless: false }), exact: path };
    // An internal location is refused before nginx gets to its redirect.
    if (loc.own.internal) route.return = { status: 404 };
    else {
      route.return = { status: 301, location: `$scheme://$host${vh.defaultPorts ? '' : ':$server_port'}${m.path}$is_args$args` };
      addResponseHeaders(route, loc, vh, cx);
    }
    out.push(route);
  }
  return out;
}

function locText(d: Directive): string {
  return `location ${d.args.join(' ')}`;
}

function routeName(vh: VhostContext, m: Match): string {
  const slug = m.kind === 'regex' ? `re-${m.path.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'x'}`
    : `${m.kind === 'exact' ? 'exact-' : ''}${m.path.replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9]+/g, '-') || 'root'}`;
  const base = `${vh.name}/${slug}`;
  let name = base;
  for (let k = 2; vh.names.has(name); k++) name = `${base}-${k}`;
  vh.names.add(name);
  return name;
}

/** Inherited blockers: the ones nginx merges into nested levels (try_files, auth). */
const INHERITED_BLOCKER = /^(try_files|auth_basic|auth_request|auth_jwt|auth_digest|satisfy)\b/;

function blockersOf(loc: Scope): PlacedItem[] {
  const out = [...loc.own.blockers];
  for (let sc = loc.parent; sc !== undefined; sc = sc.parent) {
    for (const b of sc.own.blockers) if (sc.kind !== 'location' || INHERITED_BLOCKER.test(b.directive)) out.push(b);
  }
  // `auth_basic off;` switches inherited authentication off.
  return out.filter((b) => !/^auth_(basic|request) off$/.test(b.directive));
}

function buildRoute(loc: Scope, m: Match, vh: VhostContext, cx: Context, forceEmulate: string | undefined): BuiltRoute {
  const d = loc.d!;
  const name = routeName(vh, m);
  const cfg: Record<string, unknown> = { name };
  if (m.kind === 'exact') cfg.exact = m.path;
  else if (m.kind === 'prefix') {
    cfg.prefix = m.path;
    if (m.priority) cfg.prefix_priority = true;
  } else {
    const re = pcreToJs(m.path);
    if (!re.ok) {
      // No Sluice route can match these paths: say loudly where they go instead.
      cx.item(loc, d, 'listed', `the regex cannot be used by Sluice (${re.reason}); no route matches these paths, so its requests go to whichever route matches them instead`);
      return { config: undefined, report: { ...report(loc, m, cx, name, 'no_route'), route: undefined } };
    }
    cfg.regex = re.source;
    if (m.caseless || re.caseless) cfg.case_insensitive = true;
  }
  const emulate = (reason: string, item?: Directive): BuiltRoute => {
    if (item !== undefined) cx.block(loc, item, reason);
    const access = accessRules(loc);
    if (access !== undefined) cfg.access = access;
    cfg.return = notMigrated(loc, cx, reason);
    return { config: cfg, report: report(loc, m, cx, name, 'emulated') };
  };
  if (forceEmulate !== undefined) return emulate(forceEmulate, d);
  if (loc.own.internal) {
    cfg.return = { status: 404 };
    return { config: cfg, report: report(loc, m, cx, name, 'internal') };
  }
  const blockers = blockersOf(loc);
  const ifBlock = blockers.find((b) => b.directive.startsWith('if '));
  if (ifBlock !== undefined) return emulate(ifBlock.reason);

  // The rewrite phase comes first: a rewrite or a return answers before access, files or the proxy.
  const rw = loc.own.rewrites;
  let pathRewrite: Record<string, unknown> | undefined;
  if (rw.length > 0) {
    const only = rw.length === 1 ? rw[0]! : undefined;
    if (only !== undefined && (only.flag === 'permanent' || only.flag === 'redirect' || /^(https?:\/\/|\$scheme)/.test(only.replacement)) && /^\^?\(?\.\*\)?\$?$|^\^$/.test(only.regex)) {
      const target = only.replacement.replace(/\$1/g, '$uri');
      const ret: ReturnAction = { status: only.flag === 'permanent' ? 301 : 302, text: argsAppended(target), d: only.d };
      const r = returnConfig(ret, loc, vh);
      if (typeof r === 'string') return emulate(r, only.d);
      cx.ok();
      cfg.return = r;
      addResponseHeaders(cfg, loc, vh, cx);
      return { config: cfg, report: report(loc, m, cx, name, 'translated') };
    }
    if (only !== undefined && only.flag === 'break' && loc.own.proxyPass !== undefined && !only.replacement.includes('?') && !/^https?:/.test(only.replacement)) {
      const re = pcreToJs(only.regex);
      const repl = translateTemplate(only.replacement, vh.constants);
      if (!re.ok) return emulate(`rewrite regex: ${re.reason}`, only.d);
      if (!repl.ok) return emulate(`rewrite uses ${repl.variable}, which Sluice templates do not have`, only.d);
      pathRewrite = { regex: re.source, replacement: repl.value };
      cx.ok();
    } else {
      return emulate('rewrite: only a single `rewrite … break` before proxy_pass, or a redirect of every path, is translated', rw[0]!.d);
    }
  }
  if (loc.own.ret !== undefined) {
    const r = returnConfig(loc.own.ret, loc, vh);
    if (typeof r === 'string') return emulate(r, loc.own.ret.d);
    cx.ok();
    cfg.return = r;
    if (loc.effective('access') !== undefined) cx.note(loc, loc.own.ret.d, 'nginx answers return before allow/deny are checked, so they do not apply here (nor in Sluice)');
    addResponseHeaders(cfg, loc, vh, cx);
    return { config: cfg, report: report(loc, m, cx, name, 'translated') };
  }
  if (blockers.length > 0) return emulate(blockers[0]!.reason);
  const access = accessRules(loc);
  // try_files (the location's own, else the server's): files on disk first, then the fallback.
  const tf = loc.own.tryFiles ?? (loc.parent?.kind === 'server' ? loc.parent.own.tryFiles : undefined);
  let proxyScope = loc;
  if (tf !== undefined) {
    const fallback = tf.args[tf.args.length - 1]!;
    const named = fallback.startsWith('@') ? findNamed(loc, fallback) : undefined;
    if (named?.own.proxyPass === undefined) return emulate(`try_files ${tf.args.join(' ')}: nginx answers from files on disk${fallback.startsWith('@') ? '' : ` or ${fallback}`}; Sluice serves no files`, tf);
    // Limits, access and the location's match stay this location's; the proxying is the fallback's.
    proxyScope = named;
    if (countOnce(vh, tf)) cx.list(loc, tf, `files that exist on disk (${tf.args.slice(0, -1).join(' ')}) are served by nginx; Sluice sends every request to ${fallback}'s upstream`);
  }
  const pp = proxyScope.own.proxyPass;
  if (pp === undefined) {
    if (access !== undefined && access.length > 0 && 'deny' in access[access.length - 1]! && access.every((a) => 'deny' in a)) {
      cfg.return = { status: 403 };
      addResponseHeaders(cfg, loc, vh, cx);
      return { config: cfg, report: report(loc, m, cx, name, 'translated') };
    }
    return emulate('no proxy_pass: nginx serves files from its root here (or answers 404); Sluice serves no files', d);
  }
  const target = resolveProxyPass(pp.url, proxyScope, cx);
  if (!target.ok) return emulate(target.reason, pp.d);
  if (target.uri !== undefined && m.kind === 'regex' && pathRewrite === undefined) return emulate('proxy_pass with a URI part in a regex location (nginx refuses this outside named locations and if blocks)', pp.d);
  cx.ok();
  cfg.upstream = target.upstream;
  cfg.public = true;
  if (access !== undefined) cfg.access = access;
  if (pathRewrite !== undefined) cfg.rewrite = pathRewrite;
  else if (target.uri !== undefined && target.uri !== m.path) cfg.rewrite = { replace_prefix: target.uri };
  requestHeaders(cfg, proxyScope, vh, cx, target.proxyHost);
  addResponseHeaders(cfg, proxyScope, vh, cx);
  const body = loc.effective('maxBodyBytes') ?? NGINX_DEFAULT_BODY;
  if (body > 0) cfg.max_body_bytes = body;
  const timeouts: Record<string, number> = {};
  const connect = proxyScope.effective('connectTimeoutMs');
  const read = proxyScope.effective('readTimeoutMs');
  if (connect !== undefined) timeouts.connect_ms = connect;
  if (read !== undefined) { timeouts.headers_ms = read; timeouts.body_ms = read; }
  if (Object.keys(timeouts).length > 0) cfg.timeouts = timeouts;
  limits(cfg, loc, vh);
  return { config: cfg, report: report(loc, m, cx, name, 'translated') };
}

function findNamed(loc: Scope, name: string): Scope | undefined {
  const server = loc.up('server');
  const search = (sc: Scope): Scope | undefined => {
    for (const c of sc.children) {
      if (c.kind !== 'location') continue;
      if (c.d!.args.length === 1 && c.d!.args[0] === name) return c;
      const f = search(c);
      if (f !== undefined) return f;
    }
    return undefined;
  };
  return server === undefined ? undefined : search(server);
}

/** nginx appends the request's arguments to a redirect unless the replacement has its own (or ends with `?`). */
function argsAppended(target: string): string {
  if (target.endsWith('?')) return target.slice(0, -1);
  return target.includes('?') ? target : `${target}$is_args$args`;
}

function notMigrated(loc: Scope, cx: Context, reason: string): Record<string, unknown> {
  return { status: 501, error: { code: 'not_migrated', message: `nginx ${locText(loc.d!)} (${cx.at(loc.d!)}) was not migrated: ${reason}` } };
}

function report(loc: Scope, m: Match, cx: Context, route: string, outcome: RouteOutcome): LocationReport {
  return { location: locText(loc.d!), at: cx.at(loc.d!), route, outcome, requests: describe(m), items: loc.items };
}

function accessRules(loc: Scope): Record<string, string>[] | undefined {
  const rules = loc.effective('access');
  return rules === undefined || rules.length === 0 ? undefined : rules.map((r) => ({ [r.rule]: r.cidr }));
}

/** A `return` as the contract's return action, or why it cannot be one. */
export function returnConfig(r: ReturnAction, scope: Scope, vh: Pick<VhostContext, 'constants' | 'defaultPorts'>): Record<string, unknown> | string {
  if (r.status === 444) return 'return 444 closes the connection without an answer; Sluice always answers';
  if (r.status < 100 || r.status > 599) return `status ${r.status} is not an HTTP status Sluice sends`;
  if (REDIRECTS.has(r.status) && r.text !== undefined) {
    let url = r.text;
    // nginx makes a relative redirect absolute with the request's scheme, host and (non-default) port.
    if (url.startsWith('/')) url = `$scheme://$host${vh.defaultPorts ? '' : ':$server_port'}${url}`;
    const t = translateTemplate(url, vh.constants);
    if (!t.ok) return `the redirect uses ${t.variable}, which Sluice templates do not have`;
    return { status: r.status, location: t.value };
  }
  if (r.text === undefined) return { status: r.status };
  if (r.text.includes('$')) {
    const t = translateTemplate(r.text, vh.constants);
    if (!t.ok || t.value.includes('$')) return 'a body built from variables is not translated';
  }
  return { status: r.status, body: r.text, content_type: scope.effective('defaultType') ?? 'text/plain' };
}

function countOnce(vh: VhostContext, d: Directive): boolean {
  if (vh.counted.has(d)) return false;
  vh.counted.add(d);
  return true;
}

const UPGRADE_CONNECTION = /^(upgrade|\$connection_upgrade|\$http_connection)$/i;

function requestHeaders(cfg: Record<string, unknown>, loc: Scope, vh: VhostContext, cx: Context, proxyHost: string): void {
  const edits = loc.effective('proxySetHeader') ?? [];
  const set: Record<string, string> = {};
  const remove: string[] = [];
  const upgrade = edits.find((e) => e.name === 'upgrade' && e.value === '$http_upgrade');
  const connection = edits.find((e) => e.name === 'connection');
  let host: string = proxyHost;
  const fine = (e: HeaderEdit, note?: string): void => {
    if (!countOnce(vh, e.d)) return;
    cx.ok();
    if (note !== undefined) cx.note(loc, e.d, note);
  };
  const listed = (e: HeaderEdit, reason: string): void => {
    if (countOnce(vh, e.d)) cx.list(loc, e.d, reason);
  };
  for (const e of edits) {
    if (e === upgrade) continue;
    if (e === connection) {
      if (upgrade !== undefined && UPGRADE_CONNECTION.test(e.value)) continue;
      if (e.value === '') fine(e);
      else listed(e, 'Sluice manages the upstream connection itself (keep-alive; Connection is hop-by-hop)');
      continue;
    }
    if (e.name === 'host') {
      if (e.value === '$host' || e.value === '$http_host') { host = 'client'; fine(e, e.value === '$host' ? 'Host upstream: the client\'s Host (nginx\'s $host drops a :port the client sent; Sluice sends the Host as received)' : undefined); continue; }
      if (e.value === '$proxy_host') { fine(e); continue; }
      const t = translateTemplate(e.value, vh.constants);
      if (t.ok && !t.value.includes('$')) { host = t.value; fine(e); continue; }
      listed(e, `Host from ${e.value}: Sluice sends the client's Host, the upstream's name or a fixed name; ${proxyHost} is sent instead`);
      continue;
    }
    if (e.value === '') { remove.push(e.name); fine(e); continue; }
    const t = translateTemplate(e.value, vh.constants);
    if (!t.ok) { listed(e, `${t.variable} has no Sluice equivalent: the header is not sent`); continue; }
    set[e.name] = t.value;
    fine(e);
  }
  if (upgrade !== undefined && connection !== undefined && UPGRADE_CONNECTION.test(connection.value)) {
    cfg.upgrade = ['websocket'];
    fine(upgrade, 'the WebSocket idiom (Upgrade/Connection headers) → upgrade: [websocket]');
    fine(connection);
  } else if (upgrade !== undefined) {
    listed(upgrade, 'Upgrade without Connection: upgrade, so nginx never upgrades here; neither does Sluice');
  }
  cfg.host = host;
  const hdrs: Record<string, unknown> = {};
  if (Object.keys(set).length > 0) hdrs.set = set;
  if (remove.length > 0) hdrs.remove = remove;
  if (Object.keys(hdrs).length > 0) cfg.request_headers = hdrs;
}

/** nginx adds add_header lines without `always` to these answers only. */
const ADD_HEADER_STATUSES = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

/**
 * add_header / proxy_hide_header: on a proxy route, response_headers (edits of the
 * upstream's answer); on a local answer, the return's own headers, with nginx's rule for
 * which statuses get the ones without `always`.
 */
function addResponseHeaders(cfg: Record<string, unknown>, loc: Scope, vh: VhostContext, cx: Context): void {
  const adds = loc.effective('addHeader') ?? [];
  const hide = loc.effective('proxyHideHeader') ?? [];
  const ret = cfg.return as { status: number; headers?: Record<string, string> } | undefined;
  const add: Record<string, string> = {};
  for (const e of adds) {
    const t = translateTemplate(e.value, vh.constants);
    if (!t.ok) { if (countOnce(vh, e.d)) cx.list(loc, e.d, `${t.variable} has no Sluice equivalent: the header is not added`); continue; }
    if (add[e.name] !== undefined) { if (countOnce(vh, e.d)) cx.list(loc, e.d, 'a second add_header of the same name: only the first is added'); continue; }
    if (ret !== undefined && !e.always && !ADD_HEADER_STATUSES.has(ret.status)) continue;
    add[e.name] = t.value;
    if (countOnce(vh, e.d)) {
      cx.ok();
      if (!e.always && ret === undefined) cx.note(loc, e.d, 'nginx adds it to 2xx and 3xx answers only (no `always`); Sluice adds it to every answer the upstream makes');
    }
  }
  if (ret !== undefined) {
    if (Object.keys(add).length > 0) ret.headers = { ...ret.headers, ...add };
    return;
  }
  const hdrs: Record<string, unknown> = {};
  if (Object.keys(add).length > 0) hdrs.add = add;
  if (hide.length > 0 && cfg.upstream !== undefined) hdrs.remove = hide;
  if (Object.keys(hdrs).length > 0) cfg.response_headers = hdrs;
}

function limits(cfg: Record<string, unknown>, loc: Scope, vh: VhostContext): void {
  const req: Record<string, unknown>[] = (loc.effective('limitReq') ?? []).map((l) => ({ zone: l.zone, ...(l.burst === 0 ? {} : { burst: l.burst }), ...(l.nodelay ? { nodelay: true } : l.delay > 0 ? { delay: l.delay } : {}) }));
  const conn: Record<string, unknown>[] = (loc.effective('limitConn') ?? []).map((l) => ({ zone: l.zone, max: l.max }));
  let reqStatus = loc.effective('limitReqStatus');
  let connStatus = loc.effective('limitConnStatus');
  // Lua limiters run in the access phase, after nginx's own limits (preaccess).
  for (const l of loc.effective('luaLimits') ?? []) {
    const zone = vh.luaZone(l);
    if (zone === undefined) continue;
    if (l.kind === 'req') {
      req.push({ zone, ...(l.burst > 0 ? { burst: l.burst } : {}), ...(l.nodelay ? { nodelay: true } : {}) });
      reqStatus ??= l.status;
    } else {
      conn.push({ zone, max: l.max });
      connStatus ??= l.status;
    }
  }
  if (req.length > 0) cfg.limit_req = req;
  if (reqStatus !== undefined) cfg.limit_req_status = reqStatus;
  if (conn.length > 0) cfg.limit_conn = conn;
  if (connStatus !== undefined) cfg.limit_conn_status = connStatus;
}
