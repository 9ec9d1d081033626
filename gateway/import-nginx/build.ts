// The scopes read from nginx → the Sluice config (listeners, virtual hosts, routes,
// upstreams, zones) and the report, grouped by server and location.

import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { buildLocations, returnConfig, type VhostContext } from './build-route.js';
import type { Context, ImportedUpstream } from './context.js';
import type { Directive } from './parse.js';
import { GATEWAY_RULES } from './gateway-rules.js';
import { pcreToJs } from './regex.js';
import { byPlace, type ImportReport, type LocationReport, type PlacedItem, type ReportItem, type ServerReport } from './report.js';
import type { Listen, LuaLimit, Scope } from './scope.js';
import { translateTemplate } from './variables.js';

export type UpstreamPolicy = 'nginx' | 'sluice';

export interface Imported {
  /** The Sluice config as plain data, in the order an operator reads it. */
  readonly config: Record<string, unknown>;
  readonly report: ImportReport;
  /** For comments in the YAML: where each piece came from. */
  readonly origins: { readonly upstreams: Map<string, string>; readonly listeners: Map<string, string> };
}

export const PLACEHOLDER_PLAN = 'imported';

interface ListenerBuild { name: string; host: string; port: number; ssl: boolean; http2: boolean; servers: Scope[]; defaultServer: Scope | undefined; at: string }

export function buildImport(root: Scope, cx: Context, source: string, policy: UpstreamPolicy): Imported {
  const http = root.children.find((c) => c.kind === 'http');
  const servers = http?.children.filter((c) => c.kind === 'server') ?? [];
  const listeners = buildListeners(servers, cx);
  const names = new Set<string>();
  const counted = new Set<Directive>();
  const vhosts: Record<string, unknown>[] = [];
  const serverReports: ServerReport[] = [];
  const vhostNames = new Set<string>();
  const luaZones = new LuaZones(cx);
  // nginx keeps the first server that names a host on an address:port ("conflicting
  // server name ... ignored"); Sluice refuses the duplicate, so the later one drops it.
  const claimedOn = new Map<string, Scope>();
  for (const s of servers) {
    const keys = [...listeners.entries()].filter(([, l]) => l.servers.includes(s)).map(([k]) => k);
    s.own.serverNames = s.own.serverNames.filter((n) => {
      const first = keys.map((k) => claimedOn.get(`${k} ${n}`)).find((o) => o !== undefined && o !== s);
      if (first !== undefined) {
        cx.item(s, s.d!, 'listed', `server_name ${n} is also a name of the server at ${cx.at(first.d!)} on the same address:port; nginx ignores it here (conflicting server name), and so does the import`, 'server_name');
        return false;
      }
      for (const k of keys) claimedOn.set(`${k} ${n}`, s);
      return true;
    });
  }

  for (const s of servers) {
    const mine = [...listeners.values()].filter((l) => l.servers.includes(s));
    const first = s.own.serverNames.map((n) => n.replace(/^\*\.|\.\*$/g, '')).find((n) => !n.startsWith('~') && !n.includes('*'));
    let name = (first ?? `server-${s.d!.line}`).replace(/[^A-Za-z0-9.-]+/g, '-');
    for (let k = 2; vhostNames.has(name); k++) name = `${(first ?? `server-${s.d!.line}`)}-${k}`;
    vhostNames.add(name);
    const vh: VhostContext = {
      name, names, counted, luaZone: (l) => luaZones.zoneFor(l),
      constants: new Map([['server_name', s.own.serverNames[0] ?? '']]),
      defaultPorts: mine.every((l) => l.port === (l.ssl ? 443 : 80)),
    };
    const report: ServerReport = {
      name, at: cx.at(s.d!), server_names: s.own.serverNames, listen: mine.map((l) => `${l.host}:${l.port}${l.ssl ? ' ssl' : ''}`),
      items: s.items, locations: [],
    };
    serverReports.push(report);
    const base = { listeners: mine.map((l) => l.name) };
    const defaults = mine.filter((l) => l.defaultServer === s).map((l) => l.name);

    // certbot's `if ($host = name) { return 301 … }`: a virtual host of its own for that name.
    for (const hr of s.own.hostReturns) {
      const r = returnConfig(hr.ret, s, vh);
      const otherClaims = servers.some((o) => o !== s && o.own.serverNames.includes(hr.host));
      if (otherClaims) { cx.note(s, hr.d, `never reached: another server names ${hr.host}`); continue; }
      if (typeof r === 'string') { cx.list(s, hr.d, r); continue; }
      const hname = `${name}/if-host-${hr.host.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
      vhosts.push({ name: hname, server_names: [hr.regex ? `~${hr.caseless ? '(?i)' : ''}${hr.host}` : hr.host], ...base,
        routes: [{ name: `${hname}/all`, prefix: '/', return: r }] });
      cx.note(s, hr.d, `a virtual host of its own (${hname}) for the name ${hr.host}`);
    }
    const ifHosts = new Set(s.own.hostReturns.filter((h) => !h.regex).map((h) => h.host));
    const vhost: Record<string, unknown> = { name, server_names: s.own.serverNames.filter((n) => !ifHosts.has(n)), ...base };
    if (defaults.length > 0) vhost.default_for = defaults;

    const serverRoutes = serverLevelRoutes(s, vh, cx);
    if (serverRoutes.catchAll !== undefined) {
      vhost.routes = [...serverRoutes.routes, serverRoutes.catchAll];
      for (const loc of s.children.filter((c) => c.kind === 'location')) {
        cx.item(s, loc.d!, 'note', `never reached: the server's return at ${cx.at(s.own.ret!.d)} answers every request first`, `location ${loc.d!.args.join(' ')}`);
        report.locations.push({ location: `location ${loc.d!.args.join(' ')}`, at: cx.at(loc.d!), route: undefined, outcome: 'unreachable', requests: 'none: the server answers every request itself', items: loc.items });
        markUnreachable(loc, cx);
      }
    } else {
      const built = buildLocations(s, vh, cx);
      report.locations.push(...built.reports);
      vhost.routes = [...serverRoutes.routes, ...built.routes];
      // No location for `/`: nginx serves its root's files (or 404); say so with a route of its own.
      if (!built.routes.some((r) => r.prefix === '/')) {
        const rname = uniqueName(`${name}/no-location`, names);
        (vhost.routes as unknown[]).push({ name: rname, prefix: '/', return: { status: 404 } });
        cx.item(s, s.d!, 'listed', `no location for /: nginx serves the files of its root (html/ under its prefix by default: its welcome page, usually) to requests no location takes; Sluice answers them 404 (route ${rname})`, 'server');
      }
    }
    vhosts.push(vhost);
  }

  const upstreams = emitUpstreams(cx, policy);
  const config: Record<string, unknown> = {};
  const realIp = realIpConfig(http, servers, cx);
  config.server = realIp === undefined ? {} : { real_ip: realIp };
  config.listeners = [...listeners.values()].map((l) => listenerConfig(l, cx));
  config.store = { kind: 'memory' };
  config.plans = { [PLACEHOLDER_PLAN]: { rate: 0 } };
  config.upstreams = upstreams;
  const reqZones = [...cx.reqZones.map((z) => [z.name, { kind: 'nginx_limit_req', key: keyText(z.key), rate: `${z.rate}r/${z.per}`, ...(z.size === undefined ? {} : { size: z.size }) }] as const), ...luaZones.req];
  const connZones = [...cx.connZones.map((z) => [z.name, { key: keyText(z.key), ...(z.size === undefined ? {} : { size: z.size }) }] as const), ...luaZones.conn];
  if (reqZones.length > 0) config.limit_req_zones = Object.fromEntries(reqZones);
  if (connZones.length > 0) config.limit_conn_zones = Object.fromEntries(connZones);
  dropUnknownZones(vhosts, cx, servers);
  config.virtual_hosts = vhosts;
  sweepUncounted(root, counted, cx);

  const report = assemble(root, cx, source, policy, serverReports);
  return {
    config, report,
    origins: {
      upstreams: new Map([...cx.upstreams.values()].map((u) => [u.name, u.at])),
      listeners: new Map([...listeners.values()].map((l) => [l.name, l.at])),
    },
  };
}

function uniqueName(base: string, taken: Set<string>): string {
  let n = base;
  for (let k = 2; taken.has(n); k++) n = `${base}-${k}`;
  taken.add(n);
  return n;
}

function markUnreachable(loc: Scope, cx: Context): void {
  for (const c of loc.children) if (c.kind === 'location') { cx.item(loc, c.d!, 'note', 'never reached: its server answers every request itself', `location ${c.d!.args.join(' ')}`); markUnreachable(c, cx); }
}

/** The server's own rewrite phase: redirects by regex, and a return that answers everything. */
function serverLevelRoutes(s: Scope, vh: VhostContext, cx: Context): { routes: Record<string, unknown>[]; catchAll: Record<string, unknown> | undefined } {
  const routes: Record<string, unknown>[] = [];
  for (const rw of s.own.rewrites) {
    const redirect = rw.flag === 'permanent' || rw.flag === 'redirect' || /^(https?:\/\/|\$scheme)/.test(rw.replacement);
    const re = pcreToJs(rw.regex);
    if (!re.ok) { cx.list(s, rw.d, `the regex cannot be used by Sluice (${re.reason})`); continue; }
    const name = uniqueName(`${vh.name}/rewrite-${rw.d.line}`, vh.names);
    const base = { name, regex: re.source, ...(re.caseless ? { case_insensitive: true } : {}) };
    if (!redirect) {
      routes.push({ ...base, return: { status: 501, error: { code: 'not_migrated', message: `nginx rewrite ${rw.regex} ${rw.replacement} (${cx.at(rw.d)}) was not migrated: a server-level rewrite that changes the URI before the location is chosen` } } });
      cx.block(s, rw.d, `changes the URI before the location is chosen; requests matching ${rw.regex} answer 501 not_migrated`);
      continue;
    }
    const target = rw.replacement.endsWith('?') ? rw.replacement.slice(0, -1) : rw.replacement.includes('?') ? rw.replacement : `${rw.replacement}$is_args$args`;
    const t = translateTemplate(target.startsWith('/') ? `$scheme://$host${vh.defaultPorts ? '' : ':$server_port'}${target}` : target, vh.constants);
    if (!t.ok) { cx.list(s, rw.d, `the redirect uses ${t.variable}, which Sluice templates do not have`); continue; }
    routes.push({ ...base, return: { status: rw.flag === 'permanent' ? 301 : 302, location: t.value } });
    cx.ok();
    cx.note(s, rw.d, 'a server-level rewrite runs before any location is chosen; Sluice ranks it as the first regex route, so exact (=) and ^~ locations it also matches are not redirected');
  }
  let catchAll: Record<string, unknown> | undefined;
  if (s.own.ret !== undefined) {
    const r = returnConfig(s.own.ret, s, vh);
    const name = uniqueName(`${vh.name}/return`, vh.names);
    if (typeof r === 'string') {
      cx.block(s, s.own.ret.d, r);
      catchAll = { name, prefix: '/', return: { status: 501, error: { code: 'not_migrated', message: `nginx return at ${cx.at(s.own.ret.d)} was not migrated: ${r}` } } };
    } else {
      cx.ok();
      catchAll = { name, prefix: '/', return: r };
    }
  }
  return { routes, catchAll };
}

function buildListeners(servers: readonly Scope[], cx: Context): Map<string, ListenerBuild> {
  const out = new Map<string, ListenerBuild>();
  const names = new Set<string>();
  for (const s of servers) {
    const listens: (Listen | undefined)[] = s.own.listens.length > 0 ? s.own.listens : [undefined];
    for (const l of listens) {
      const host = l?.host ?? '*';
      const port = l?.port ?? 80;
      const key = `${host}:${port}`;
      let b = out.get(key);
      if (b === undefined) {
        const ssl = l?.ssl ?? false;
        const base = `${ssl ? 'https' : 'http'}-${port}${host === '*' ? '' : `-${host.replace(/[^A-Za-z0-9]+/g, '-')}`}`;
        b = { name: uniqueName(base, names), host: host === '*' ? '127.0.0.1' : host, port, ssl, http2: false, servers: [], defaultServer: undefined, at: l === undefined ? cx.at(s.d!) : cx.at(l.d) };
        out.set(key, b);
        if (l === undefined) cx.note(s, s.d!, 'no listen: nginx listens on *:80; so does the import (on 127.0.0.1)');
        else if (l.host === undefined) cx.note(s, l.d, 'nginx listens on every address here; the import binds 127.0.0.1 (change the listener\'s host to widen it)');
      }
      if (l?.ssl === true) b.ssl = true;
      if (l?.http2 === true) b.http2 = true;
      if (!b.servers.includes(s)) b.servers.push(s);
      if (l?.defaultServer === true) b.defaultServer ??= s;
    }
  }
  for (const b of out.values()) b.defaultServer ??= b.servers[0];
  return out;
}

function listenerConfig(l: ListenerBuild, cx: Context): Record<string, unknown> {
  const cfg: Record<string, unknown> = { name: l.name, host: l.host, port: l.port };
  if (!l.ssl) return cfg;
  // nginx answers an unknown (or absent) SNI with the default server's certificate: first.
  const ordered = [l.defaultServer!, ...l.servers.filter((s) => s !== l.defaultServer)];
  const certificates: Record<string, unknown>[] = [];
  for (const s of ordered) {
    const certs = s.effective('sslCertificate') ?? [];
    const keys = s.effective('sslCertificateKey') ?? [];
    if (certs.length === 0) continue;
    const hosts = s.own.serverNames.filter((n) => !n.startsWith('~'));
    certs.forEach((cert, i) => {
      const key = keys[i] ?? keys[0];
      if (key === undefined) return;
      const certPath = absolutePath(cert.path, cx);
      if (certificates.some((c) => c.cert === certPath)) return;
      certificates.push({ cert: certPath, key: absolutePath(key.path, cx), ...(hosts.length > 0 ? { hosts } : {}) });
      for (const f of [cert, key]) {
        if (!existsSync(absolutePath(f.path, cx))) cx.list(s, f.d, `${absolutePath(f.path, cx)} does not exist here: it must where Sluice runs (sluice --check and start-up read it)`);
      }
    });
  }
  const first = l.defaultServer!;
  const tls: Record<string, unknown> = { certificates };
  const protocols = first.effective('sslProtocols');
  if (protocols !== undefined && !protocols.includes('TLSv1.2') && protocols.includes('TLSv1.3')) tls.min_version = 'TLSv1.3';
  const ciphers = first.effective('sslCiphers');
  if (ciphers !== undefined) tls.ciphers = ciphers;
  if (certificates.length === 0) {
    cx.item(first, first.d!, 'listed', `listener ${l.name} is ssl but no server on it has ssl_certificate (nginx refuses to start); it is imported as plain HTTP`, 'server');
    return cfg;
  }
  cfg.tls = tls;
  return cfg;
}

function absolutePath(p: string, cx: Context): string {
  return isAbsolute(p) ? p : join(cx.prefix, p);
}

function realIpConfig(http: Scope | undefined, servers: readonly Scope[], cx: Context): Record<string, unknown> | undefined {
  // Sluice has one real_ip for the whole gateway: nginx's http-level one, or the one every server agrees on.
  const pick = (sc: Scope): string => JSON.stringify([sc.effective('realIpFrom') ?? [], sc.effective('realIpHeader') ?? 'x-real-ip', sc.effective('realIpRecursive') ?? false]);
  const all = servers.length > 0 ? servers : http === undefined ? [] : [http];
  const distinct = [...new Set(all.map(pick))];
  const chosen = all[0];
  if (chosen === undefined) return undefined;
  const from = chosen.effective('realIpFrom') ?? [];
  if (distinct.length > 1) {
    for (const s of all) if (pick(s) !== pick(chosen)) cx.item(s, s.d!, 'listed', `real_ip settings differ from ${cx.at(chosen.d!)}; Sluice has one set for every listener, and uses that one`, 'set_real_ip_from');
  }
  if (from.length === 0) return undefined;
  return { trusted: from, header: chosen.effective('realIpHeader') ?? 'x-real-ip', recursive: chosen.effective('realIpRecursive') ?? false };
}

function emitUpstreams(cx: Context, policy: UpstreamPolicy): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const u of cx.upstreams.values()) out[u.name] = upstreamConfig(u, policy);
  return out;
}

/**
 * nginx's defaults, unless the operator opted into Sluice's: every server tried once on
 * an error or timeout (proxy_next_upstream error timeout), never on a 5xx answer; a
 * server out for fail_timeout=10s after max_fails=1 failure (errors and timeouts only),
 * and never the only server of a group; 60 s connect and read timeouts.
 */
function upstreamConfig(u: ImportedUpstream, policy: UpstreamPolicy): Record<string, unknown> {
  const cfg: Record<string, unknown> = {
    // A server with no parameter stays the plain origin string it always was.
    targets: u.targets.map((t) => (Object.keys(t).length === 1 ? t.url : { ...t })),
  };
  if (u.balancer !== undefined) cfg.balancer = u.balancer;
  else if (u.block || policy === 'nginx') cfg.balancer = 'round_robin';
  if (policy === 'sluice') {
    if (u.targets.some((t) => t.max_fails !== undefined)) cfg.outlier = { max_ejection_percent: 100 };
    return cfg;
  }
  const several = u.targets.length > 1;
  cfg.outlier = { consecutive_failures: several ? 1 : 0, base_ejection_ms: 10_000, max_ejection_ms: 10_000, max_ejection_percent: 100, count_5xx: false };
  cfg.retry = { attempts: Math.min(10, u.targets.length - 1), statuses: [] };
  cfg.connect_timeout_ms = 60_000;
  cfg.headers_timeout_ms = 60_000;
  cfg.body_timeout_ms = 60_000;
  return cfg;
}

export function keyText(k: { kind: string; header?: string }): string {
  return k.kind === 'client' ? 'client' : `header:${k.header}`;
}

/** Zones for the Lua limiters, named after their shared dict; limiters with equal settings share one. */
class LuaZones {
  readonly req: [string, Record<string, unknown>][] = [];
  readonly conn: [string, Record<string, unknown>][] = [];
  private readonly taken: Set<string>;

  constructor(cx: Context) {
    this.taken = new Set([...cx.reqZones.map((z) => z.name), ...cx.connZones.map((z) => z.name)]);
  }

  zoneFor(l: LuaLimit): string | undefined {
    const rate = l.kind === 'req' ? rateText(l.perSecond) : undefined;
    if (l.kind === 'req' && rate === undefined) return undefined;
    const spec = l.kind === 'req' ? { kind: 'nginx_limit_req', key: keyText(l.key), rate } : { key: keyText(l.key) };
    const list = l.kind === 'req' ? this.req : this.conn;
    const base = `lua_${l.dict}`.replace(/[^A-Za-z0-9_]/g, '_');
    for (const [n, z] of list) if (n.startsWith(base) && JSON.stringify(z) === JSON.stringify(spec)) return n;
    let name = base;
    for (let k = 2; this.taken.has(name); k++) name = `${base}_${k}`;
    this.taken.add(name);
    list.push([name, spec]);
    return name;
  }
}

/** Sluice rates are whole requests per second or per minute. */
export function rateText(perSecond: number): string | undefined {
  if (Number.isInteger(perSecond) && perSecond > 0) return `${perSecond}r/s`;
  const perMinute = perSecond * 60;
  if (Math.abs(perMinute - Math.round(perMinute)) < 1e-9 && perMinute >= 1) return `${Math.round(perMinute)}r/m`;
  return undefined;
}

/** A limit naming a zone that was not imported cannot be enforced: say so where it is used, and leave it out. */
function dropUnknownZones(vhosts: Record<string, unknown>[], cx: Context, servers: readonly Scope[]): void {
  const known = new Set([...cx.reqZones.map((z) => z.name), ...cx.connZones.map((z) => z.name)]);
  const reported = new Set<string>();
  const visit = (routes: Record<string, unknown>[] | undefined): void => {
    for (const r of routes ?? []) {
      for (const field of ['limit_req', 'limit_conn'] as const) {
        const list = r[field] as { zone: string }[] | undefined;
        if (list === undefined) continue;
        const kept = list.filter((l) => known.has(l.zone) || l.zone.startsWith('lua_'));
        for (const l of list) {
          if (kept.includes(l) || reported.has(l.zone)) continue;
          reported.add(l.zone);
          const why = cx.badZones.has(l.zone) ? `its zone ${l.zone} (${cx.badZones.get(l.zone)}) was not translated` : `unknown zone ${l.zone}`;
          const where = findLimit(servers, l.zone);
          if (where !== undefined) cx.item(where.scope, where.d, 'listed', `${why}; the limit is left out`, `zone ${l.zone}`);
        }
        if (kept.length === 0) delete r[field];
        else r[field] = kept;
      }
      visit(r.routes as Record<string, unknown>[] | undefined);
    }
  };
  for (const v of vhosts) visit(v.routes as Record<string, unknown>[]);
}

function findLimit(servers: readonly Scope[], zone: string): { scope: Scope; d: Directive } | undefined {
  const search = (sc: Scope): { scope: Scope; d: Directive } | undefined => {
    for (const l of [...(sc.s.limitReq ?? []), ...(sc.s.limitConn ?? [])]) {
      if (l.zone === zone) return { scope: sc, d: { name: 'zone', args: [zone], file: l.at.slice(0, l.at.lastIndexOf(':')), line: Number(l.at.slice(l.at.lastIndexOf(':') + 1)), block: undefined } };
    }
    for (const c of sc.children) { const f = search(c); if (f !== undefined) return f; }
    return undefined;
  };
  for (const s of servers) {
    const f = search(s.parent ?? s) ?? search(s);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** Header directives no route used (every location below set its own): still accounted for. */
function sweepUncounted(root: Scope, counted: Set<Directive>, cx: Context): void {
  const visit = (sc: Scope): void => {
    for (const e of [...(sc.s.proxySetHeader ?? []), ...(sc.s.addHeader ?? [])]) {
      if (counted.has(e.d)) continue;
      counted.add(e.d);
      cx.ok();
      cx.note(sc, e.d, 'used by no imported proxy route (each sets its own headers, or none proxies)');
    }
    for (const c of sc.children) visit(c);
  };
  visit(root);
}

function assemble(root: Scope, cx: Context, source: string, policy: UpstreamPolicy, servers: ServerReport[]): ImportReport {
  const all: PlacedItem[] = [];
  const global: PlacedItem[] = [];
  const collect = (sc: Scope, inServer: boolean): void => {
    all.push(...sc.items);
    if (!inServer) global.push(...sc.items);
    for (const c of sc.children) collect(c, inServer || c.kind === 'server');
  };
  collect(root, false);
  all.sort(byPlace);
  global.sort(byPlace);
  // What Sluice does differently whatever the config says: read with the rest, though no directive of the config is behind it.
  global.push(...GATEWAY_RULES.map((r) => r.item));
  for (const s of servers) { s.items.sort(byPlace); for (const l of s.locations) l.items.sort(byPlace); }
  const plain = (i: PlacedItem): ReportItem => ({ file: i.file, line: i.line, directive: i.directive, reason: i.reason });
  const untranslated = all.filter((i) => i.kind !== 'note').map(plain);
  const emulatedRoutes = servers.reduce((n, s) => n + s.locations.filter((l) => l.outcome === 'emulated').length, 0);
  return {
    schema_version: 1,
    source,
    upstream_policy: policy,
    counts: {
      translated: cx.translated,
      emulated: emulatedRoutes,
      listed: all.filter((i) => i.kind === 'listed').length,
      not_enforced: all.filter((i) => i.kind === 'not_enforced').length,
      notes: all.filter((i) => i.kind === 'note').length,
      verified: null,
    },
    translated: cx.translated,
    untranslated,
    notes: all.filter((i) => i.kind === 'note').map(plain),
    not_enforced: all.filter((i) => i.kind === 'not_enforced').map(plain),
    servers,
    global,
    errors: [],
    verify: null,
  };
}

export type { LocationReport };
