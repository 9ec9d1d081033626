// nginx tree → Sluice config. Every directive ends up in exactly one of three places:
// translated (counted), untranslated (listed with file:line and why) or, for the few
// that change nothing Sluice needs to know, a note. Nothing is dropped without a line
// in the report.

import type { Directive } from './parse.js';

export interface ReportItem {
  readonly file: string;
  readonly line: number;
  readonly directive: string;
  readonly reason: string;
}

export type ZoneKey = { readonly kind: 'client' } | { readonly kind: 'header'; readonly header: string };

export interface ReqZone {
  readonly name: string;
  readonly key: ZoneKey;
  /** Requests per `per`. */
  readonly rate: number;
  readonly per: 's' | 'm';
  /** As written in zone=NAME:SIZE; Sluice accepts it and sizes its store itself. */
  readonly size: string | undefined;
  readonly at: string;
}

export interface ConnZone {
  readonly name: string;
  readonly key: ZoneKey;
  readonly size: string | undefined;
  readonly at: string;
}

export interface ReqLimit {
  readonly zone: string;
  readonly burst: number;
  /** nginx: nodelay = no delay at all; delay=N = the first N excess requests pass undelayed. */
  readonly nodelay: boolean;
  readonly delay: number;
  readonly at: string;
}

export interface ConnLimit {
  readonly zone: string;
  readonly max: number;
  readonly at: string;
}

/** A server line: a plain origin unless a parameter needs the object form. */
export interface ImportedTarget {
  readonly url: string;
  weight?: number;
  backup?: boolean;
  max_fails?: number;
  fail_timeout_ms?: number;
}

export interface ImportedUpstream {
  readonly name: string;
  readonly targets: ImportedTarget[];
  connections: number | undefined;
  /** Emitted for `upstream` blocks only: nginx's default is weighted round-robin, Sluice's is not. */
  balancer: 'round_robin' | 'weighted_round_robin' | 'least_outstanding' | 'p2c_ewma' | undefined;
  /** nginx never caps how much of a group is unavailable; set to 100 when max_fails is imported. */
  maxEjectionPercent: number | undefined;
  readonly at: string;
}

export interface ImportedRoute {
  readonly name: string;
  readonly prefix: string;
  readonly upstream: string;
  readonly limit_req: readonly ReqLimit[];
  readonly limit_req_status: number | undefined;
  readonly limit_conn: readonly ConnLimit[];
  readonly limit_conn_status: number | undefined;
  readonly at: string;
}

export interface Imported {
  readonly server: { host: string; port: number; at: string | undefined };
  readonly reqZones: ReqZone[];
  readonly connZones: ConnZone[];
  readonly upstreams: ImportedUpstream[];
  readonly routes: ImportedRoute[];
  readonly translated: number;
  readonly untranslated: ReportItem[];
  readonly notes: ReportItem[];
}

/** What a level passes down: nginx inherits limit_req/limit_conn lists only when a level sets none. */
interface Inherited {
  readonly limitReq: readonly ReqLimit[];
  readonly limitReqStatus: number | undefined;
  readonly limitConn: readonly ConnLimit[];
  readonly limitConnStatus: number | undefined;
}

// Blocks whose contents are not directives (map entries, MIME types, addresses): the
// block is reported once, as a whole.
const DATA_BLOCKS = new Set(['map', 'types', 'geo', 'split_clients', 'charset_map', 'match']);

// Methods with no Sluice equivalent; the targets are balanced (weighted) round-robin instead.
const UNMAPPED_METHODS: Record<string, string> = {
  ip_hash: 'Sluice has no sticky balancing; targets are imported with (weighted) round-robin',
  hash: 'Sluice has no hash balancing; targets are imported with (weighted) round-robin',
};

/** `displayFile` names files in the report (the importer makes them relative to nginx's prefix). */
export function convert(tree: readonly Directive[], displayFile: (file: string) => string = (f) => f): Imported {
  let translated = 0;
  const untranslated: ReportItem[] = [];
  const notes: ReportItem[] = [];
  const at = (d: Directive): string => `${displayFile(d.file)}:${d.line}`;
  const show = (d: Directive): string => [d.name, ...d.args.map(quoteArg)].join(' ');
  const ok = (): void => { translated++; };
  const miss = (d: Directive, reason: string): void => { untranslated.push({ file: displayFile(d.file), line: d.line, directive: show(d), reason }); };
  const note = (d: Directive, reason: string): void => { notes.push({ file: displayFile(d.file), line: d.line, directive: show(d), reason }); };
  /** A block nobody imports: itself and everything inside, so nothing inside is silent. */
  const missBlock = (d: Directive, reason: string): void => {
    miss(d, reason);
    if (d.block === undefined || DATA_BLOCKS.has(d.name)) return;
    for (const c of d.block) missBlock(c, `inside untranslated "${d.name}" at ${at(d)}`);
  };

  const reqZones: ReqZone[] = [];
  const connZones: ConnZone[] = [];
  const badZones = new Map<string, string>();
  const upstreamBlocks = new Map<string, Directive>();
  const upstreams: ImportedUpstream[] = [];
  const routes: ImportedRoute[] = [];
  const server: Imported['server'] = { host: '127.0.0.1', port: 80, at: undefined };

  // ---- limit directives, at any level ----
  const zoneKey = (d: Directive, key: string): ZoneKey | undefined => {
    if (key === '$binary_remote_addr' || key === '$remote_addr') return { kind: 'client' };
    const m = /^\$http_([a-z0-9_]+)$/i.exec(key);
    if (m !== null) return { kind: 'header', header: m[1]!.toLowerCase().replace(/_/g, '-') };
    miss(d, `key ${JSON.stringify(key)}: Sluice keys a zone by the client address ($binary_remote_addr, $remote_addr) or one request header ($http_NAME) only`);
    return undefined;
  };
  const zoneName = (d: Directive): string | undefined => {
    const z = d.args.find((a) => a.startsWith('zone='));
    return z?.slice(5).split(':')[0];
  };
  const zoneSize = (d: Directive): string | undefined => d.args.find((a) => a.startsWith('zone='))?.split(':')[1];
  const limitReqZone = (d: Directive): void => {
    const name = zoneName(d);
    const rate = d.args.find((a) => a.startsWith('rate='));
    const rm = rate === undefined ? null : /^rate=(\d+)r\/([sm])$/.exec(rate);
    if (name === undefined || rm === null || d.args.length < 3) { miss(d, 'expected: limit_req_zone KEY zone=NAME:SIZE rate=Nr/s|Nr/m'); if (name !== undefined) badZones.set(name, at(d)); return; }
    const extra = d.args.slice(1).filter((a) => !a.startsWith('zone=') && !a.startsWith('rate='));
    if (extra.length > 0) { miss(d, `${extra.join(' ')}: zone synchronisation between nginx instances has no Sluice equivalent (share a Redis store instead)`); badZones.set(name, at(d)); return; }
    const key = zoneKey(d, d.args[0]!);
    if (key === undefined) { badZones.set(name, at(d)); return; }
    reqZones.push({ name, key, rate: Number(rm[1]), per: rm[2] as 's' | 'm', size: zoneSize(d), at: at(d) });
    ok();
  };
  const limitConnZone = (d: Directive): void => {
    const name = zoneName(d);
    if (name === undefined || d.args.length !== 2) { miss(d, 'expected: limit_conn_zone KEY zone=NAME:SIZE'); if (name !== undefined) badZones.set(name, at(d)); return; }
    const key = zoneKey(d, d.args[0]!);
    if (key === undefined) { badZones.set(name, at(d)); return; }
    connZones.push({ name, key, size: zoneSize(d), at: at(d) });
    ok();
  };
  const parseLimitReq = (d: Directive): ReqLimit | undefined => {
    let zone: string | undefined;
    let burst = 0;
    let nodelay = false;
    let delay = 0;
    for (const a of d.args) {
      if (a.startsWith('zone=')) zone = a.slice(5);
      else if (/^burst=\d+$/.test(a)) burst = Number(a.slice(6));
      // nginx lets the later of nodelay / delay=N win; Sluice accepts only one of them.
      else if (a === 'nodelay') { nodelay = true; delay = 0; }
      else if (/^delay=\d+$/.test(a)) { delay = Number(a.slice(6)); nodelay = false; }
      else { miss(d, `unknown parameter ${JSON.stringify(a)}`); return undefined; }
    }
    if (zone === undefined) { miss(d, 'no zone='); return undefined; }
    return { zone, burst, nodelay, delay, at: at(d) };
  };
  const parseLimitConn = (d: Directive): ConnLimit | undefined => {
    if (d.args.length !== 2 || !/^\d+$/.test(d.args[1]!)) { miss(d, 'expected: limit_conn ZONE NUMBER'); return undefined; }
    return { zone: d.args[0]!, max: Number(d.args[1]), at: at(d) };
  };
  const status = (d: Directive): number | undefined => {
    const v = d.args[0];
    if (d.args.length !== 1 || !/^\d{3}$/.test(v!) || Number(v) < 400 || Number(v) > 599) { miss(d, 'expected a status code between 400 and 599'); return undefined; }
    return Number(v);
  };

  /**
   * The limit directives of one level, applied on top of what the level above passed
   * down. Returns undefined for directives that are not limit directives.
   */
  const levelLimits = (block: readonly Directive[], up: Inherited): { inh: Inherited; used: Set<Directive> } => {
    const used = new Set<Directive>();
    const req: ReqLimit[] = [];
    const conn: ConnLimit[] = [];
    let hasReq = false;
    let hasConn = false;
    let reqStatus = up.limitReqStatus;
    let connStatus = up.limitConnStatus;
    for (const d of block) {
      if (d.name === 'limit_req') {
        used.add(d);
        hasReq = true;
        const l = parseLimitReq(d);
        if (l !== undefined) { req.push(l); ok(); }
      } else if (d.name === 'limit_conn') {
        used.add(d);
        hasConn = true;
        const l = parseLimitConn(d);
        if (l !== undefined) { conn.push(l); ok(); }
      } else if (d.name === 'limit_req_status') {
        used.add(d);
        const s = status(d);
        if (s !== undefined) { reqStatus = s; ok(); }
      } else if (d.name === 'limit_conn_status') {
        used.add(d);
        const s = status(d);
        if (s !== undefined) { connStatus = s; ok(); }
      }
    }
    return {
      used,
      inh: {
        limitReq: hasReq ? req : up.limitReq,
        limitReqStatus: reqStatus,
        limitConn: hasConn ? conn : up.limitConn,
        limitConnStatus: connStatus,
      },
    };
  };

  // ---- upstreams ----
  const upstreamByName = new Map<string, ImportedUpstream>();
  const importUpstream = (d: Directive): void => {
    const name = d.args[0];
    if (d.args.length !== 1 || name === undefined || d.block === undefined) { missBlock(d, 'expected: upstream NAME { … }'); return; }
    upstreamBlocks.set(name, d);
    const u: ImportedUpstream = { name, targets: [], connections: undefined, balancer: undefined, maxEjectionPercent: undefined, at: at(d) };
    ok();
    let method: ImportedUpstream['balancer'];
    for (const c of d.block) {
      if (c.name === 'server') {
        const [addr, ...params] = c.args;
        if (addr === undefined) { miss(c, 'server without an address'); continue; }
        if (addr.startsWith('unix:')) { miss(c, 'unix-socket upstreams are not supported: Sluice targets are http://host:port'); continue; }
        if (params.includes('down')) { miss(c, '"down": the server is marked permanently unavailable, so it is not imported as a target'); continue; }
        const t: ImportedTarget = { url: `http://${withPort(addr)}` };
        u.targets.push(t);
        ok();
        for (const p of params) {
          const pname = p.split('=')[0]!;
          const value = p.slice(pname.length + 1);
          if (serverParam(t, pname, value)) { if (pname === 'max_fails') u.maxEjectionPercent = 100; continue; }
          const reason = ({
            weight: 'expected weight=N (N >= 1)',
            max_fails: 'expected max_fails=N',
            fail_timeout: 'expected fail_timeout=TIME (e.g. 10s, 500ms, 1m)',
            max_conns: 'no per-target connection cap beyond the pool size (connections)',
            slow_start: 'no slow start',
            resolve: 'targets are resolved by the OS resolver on connect; no periodic re-resolution',
          } as Record<string, string>)[pname] ?? 'unknown server parameter';
          untranslated.push({ file: displayFile(c.file), line: c.line, directive: `server ${addr} ${p}`, reason });
        }
        if (t.max_fails !== undefined || t.fail_timeout_ms !== undefined) {
          note(c, 'max_fails/fail_timeout → passive ejection: nginx counts failures (errors and timeouts) within fail_timeout, '
            + 'Sluice counts them in a row and also counts 5xx answers; the ejection lasts fail_timeout in both');
        }
      } else if (c.name === 'keepalive') {
        if (c.args.length === 1 && /^\d+$/.test(c.args[0]!) && Number(c.args[0]) >= 1) { u.connections = Number(c.args[0]); ok(); }
        else miss(c, 'expected: keepalive N');
        note(c, 'nginx keeps N idle connections per worker process and opens more on demand; Sluice `connections` caps the pool per target (requests beyond it queue)');
      } else if (c.name === 'least_conn' && c.args.length === 0) {
        method = 'least_outstanding';
        ok();
        note(c, 'least_conn → least_outstanding: fewest requests in flight per weight, counting what the backend advertises in X-Backend-Load when it does');
      } else if (c.name === 'random' && c.args.length === 2 && c.args[0] === 'two' && c.args[1] === 'least_conn') {
        method = 'p2c_ewma';
        ok();
        note(c, 'nginx picks two servers at random and takes the one with fewer active connections; Sluice p2c_ewma also samples two, '
          + 'and compares latency × (requests outstanding + 1), which is least_conn between the two whenever their latencies are equal');
      } else if (c.name === 'random' && (c.args.length === 0 || (c.args.length === 1 && c.args[0] === 'two'))) {
        // `random` spreads by weight like round-robin does, only without the fixed order;
        // `random two` without a method means least_conn between the two (nginx's default).
        method = c.args.length === 0 ? undefined : 'p2c_ewma';
        ok();
        note(c, c.args.length === 0
          ? 'random: imported as (weighted) round-robin, which gives each server the same long-run share without the randomness'
          : 'random two: nginx compares the two by active connections (least_conn); imported as p2c_ewma, see random two least_conn');
      } else if (c.name in UNMAPPED_METHODS) {
        miss(c, UNMAPPED_METHODS[c.name]!);
      } else {
        missBlock(c, 'no Sluice equivalent inside upstream');
      }
    }
    u.balancer = method ?? (u.targets.some((t) => (t.weight ?? 1) !== 1) ? 'weighted_round_robin' : 'round_robin');
    if (u.targets.length > 0 && u.targets.every((t) => t.backup === true)) {
      for (const t of u.targets) delete t.backup;
      untranslated.push({ file: displayFile(d.file), line: d.line, directive: `upstream ${name}`, reason: 'every imported server is a backup (the others are down or not importable); they are imported as primaries' });
    }
    if (u.targets.length === 0) { untranslated.push({ file: displayFile(d.file), line: d.line, directive: `upstream ${name}`, reason: 'no importable server: the upstream is left out, and so are the routes using it' }); return; }
    upstreams.push(u);
    upstreamByName.set(name, u);
  };

  /** The upstream a proxy_pass points at: a named block, or an inline origin that becomes its own upstream. */
  const upstreamFor = (d: Directive, locationPrefix: string): string | undefined => {
    const target = d.args[0];
    if (d.args.length !== 1 || target === undefined) { miss(d, 'expected: proxy_pass URL'); return undefined; }
    if (target.includes('$')) { miss(d, 'variables in proxy_pass are resolved per request by nginx; Sluice needs a fixed upstream'); return undefined; }
    const m = /^(https?):\/\/([^/?#]+)(.*)$/.exec(target);
    if (m === null) { miss(d, 'only http:// and https:// upstreams are supported'); return undefined; }
    const [, scheme, host, uri] = m as unknown as [string, string, string, string];
    if (host.startsWith('unix:')) { miss(d, 'unix-socket upstreams are not supported'); return undefined; }
    // A URI part replaces the matched prefix; only replacing it with itself is a no-op.
    if (uri !== '' && uri !== locationPrefix) {
      miss(d, `the URI part ${JSON.stringify(uri)} makes nginx replace the matched location prefix; Sluice forwards the path unchanged, so this route is left out`);
      return undefined;
    }
    // nginx looks an explicit `upstream` block up by the bare name; a name with a port is a host.
    if (!host.includes(':') && upstreamBlocks.has(host)) {
      if (!upstreamByName.has(host)) { miss(d, `upstream ${host} had no importable server`); return undefined; }
      if (scheme === 'https') {
        const u = upstreamByName.get(host)!;
        const name = `${host}-https`;
        if (!upstreamByName.has(name)) {
          const v: ImportedUpstream = { ...u, name, targets: u.targets.map((t) => ({ ...t, url: t.url.replace(/^http:/, 'https:').replace(/:80$/, ':443') })) };
          upstreams.push(v);
          upstreamByName.set(name, v);
        }
        return name;
      }
      return host;
    }
    const origin = `${scheme}://${withPort(host, scheme === 'https' ? 443 : 80)}`;
    const existing = upstreams.find((u) => u.targets.length === 1 && u.targets[0]!.url === origin && !upstreamBlocks.has(u.name));
    if (existing !== undefined) return existing.name;
    const name = uniqueName(origin.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9]+/g, '-'), upstreamByName);
    const u: ImportedUpstream = { name, targets: [{ url: origin }], connections: undefined, balancer: undefined, maxEjectionPercent: undefined, at: at(d) };
    upstreams.push(u);
    upstreamByName.set(name, u);
    return name;
  };

  // ---- locations ----
  const routeNames = new Map<string, unknown>();
  const importLocation = (d: Directive, up: Inherited, outerPrefix: string | undefined): void => {
    if (d.block === undefined) { miss(d, 'location without a block'); return; }
    let prefix: string | undefined;
    if (d.args.length === 1 && !d.args[0]!.startsWith('@')) prefix = d.args[0];
    else if (d.args.length === 2 && d.args[0] === '^~') prefix = d.args[1];
    if (prefix === undefined) {
      const kind = d.args[0] === '=' ? 'exact-match (=)' : d.args[0]!.startsWith('@') ? 'named (@)' : d.args[0] === '~' || d.args[0] === '~*' ? 'regex' : 'this';
      missBlock(d, `Sluice routes match path prefixes only; ${kind} locations have no faithful equivalent`);
      return;
    }
    if (outerPrefix !== undefined && !prefix.startsWith(outerPrefix)) {
      missBlock(d, `nested location ${prefix} is outside its parent ${outerPrefix}; nginx rejects or never reaches it`);
      return;
    }
    const { inh, used } = levelLimits(d.block, up);
    let upstream: string | undefined;
    let proxy: Directive | undefined;
    const nested: Directive[] = [];
    for (const c of d.block) {
      if (used.has(c)) continue;
      if (c.name === 'proxy_pass') { proxy = c; upstream = upstreamFor(c, prefix!); if (upstream !== undefined) ok(); }
      else if (c.name === 'location') nested.push(c);
      else if (keepAliveIdiom(c)) { ok(); note(c, 'Sluice always speaks HTTP/1.1 with keep-alive to upstreams and strips hop-by-hop headers'); }
      else missBlock(c, reasonFor(c));
    }
    if (upstream !== undefined) {
      const name = uniqueName(prefix === '/' ? 'root' : prefix.replace(/^\/+|\/+$/g, '').replace(/[^A-Za-z0-9]+/g, '-') || 'root', routeNames);
      routeNames.set(name, true);
      routes.push({
        name, prefix, upstream,
        limit_req: inh.limitReq, limit_req_status: inh.limitReqStatus,
        limit_conn: inh.limitConn, limit_conn_status: inh.limitConnStatus,
        at: at(d),
      });
      ok();
      if (d.args[0] === '^~') note(d, '^~ only ranks this prefix above regex locations; no regex location is imported, so it is a plain prefix route');
      if (!prefix.endsWith('/')) note(d, `nginx matches every path starting with ${JSON.stringify(prefix)} (also ${prefix}x); Sluice matches ${prefix} and ${prefix}/… only`);
      else if (prefix !== '/') note(d, `nginx answers ${prefix.slice(0, -1)} (no slash) with a 301 to ${prefix}; Sluice routes ${prefix.slice(0, -1)} by its other routes`);
    } else if (proxy === undefined) {
      miss(d, 'no proxy_pass: Sluice only proxies, so no route is made for this location');
    } else {
      miss(d, 'its proxy_pass was not translated, so no route is made for this location');
    }
    for (const n of nested) importLocation(n, inh, prefix);
  };

  // ---- server ----
  const importServer = (d: Directive, up: Inherited): void => {
    const block = d.block!;
    const { inh, used } = levelLimits(block, up);
    let listened = false;
    for (const c of block) {
      if (used.has(c)) continue;
      if (c.name === 'listen') {
        if (listened) { miss(c, 'Sluice has one public listener; only the first listen is imported'); continue; }
        const [addr, ...params] = c.args;
        const l = addr === undefined ? undefined : parseListen(addr);
        if (l === undefined) { miss(c, 'expected: listen [HOST:]PORT (unix sockets are not supported)'); continue; }
        listened = true;
        server.host = l.host ?? '127.0.0.1';
        server.port = l.port;
        server.at = at(c);
        ok();
        if (l.host === undefined) note(c, 'nginx listens on every address here; the import binds 127.0.0.1 (set server.host to widen it)');
        for (const p of params) {
          if (p === 'default_server' || p === 'default') continue;
          untranslated.push({ file: displayFile(c.file), line: c.line, directive: `listen ${addr} ${p}`, reason: p === 'ssl' || p === 'http2' || p === 'quic' ? `${p}: Sluice listens plain HTTP/1.1 (terminate TLS in front of it)` : 'listen parameter with no Sluice equivalent' });
        }
      } else if (c.name === 'server_name') {
        note(c, 'ignored: Sluice serves one site; every Host goes to the imported routes');
      } else if (c.name === 'location') {
        importLocation(c, inh, undefined);
      } else if (keepAliveIdiom(c)) {
        ok();
      } else {
        missBlock(c, reasonFor(c));
      }
    }
    if (!listened) note(d, 'no listen: nginx uses port 80; the import does too, on 127.0.0.1');
  };

  const importHttp = (d: Directive): void => {
    const block = d.block!;
    // Zones and upstreams first: nginx resolves zone= and proxy_pass names after the
    // whole http block is read, so their order in the file does not matter.
    for (const c of block) {
      if (c.name === 'limit_req_zone') limitReqZone(c);
      else if (c.name === 'limit_conn_zone') limitConnZone(c);
      else if (c.name === 'upstream') importUpstream(c);
    }
    const { inh, used } = levelLimits(block, { limitReq: [], limitReqStatus: undefined, limitConn: [], limitConnStatus: undefined });
    const servers = block.filter((c) => c.name === 'server' && c.block !== undefined);
    // nginx answers a Host no server_name matches from the default_server (else the
    // first server) of the port; that is the one Sluice, which ignores Host, becomes.
    const chosen = servers.find((s) => s.block!.some((c) => c.name === 'listen' && c.args.includes('default_server'))) ?? servers[0];
    for (const c of block) {
      if (used.has(c) || c.name === 'limit_req_zone' || c.name === 'limit_conn_zone' || c.name === 'upstream') continue;
      if (c.name === 'server') {
        if (c === chosen) importServer(c, inh);
        else missBlock(c, `Sluice has one listener and ignores server_name; only the server at ${chosen === undefined ? '?' : at(chosen)} is imported`);
      } else if (keepAliveIdiom(c)) {
        ok();
      } else {
        missBlock(c, reasonFor(c));
      }
    }
  };

  for (const d of tree) {
    if (d.name === 'http' && d.block !== undefined) { ok(); importHttp(d); }
    else missBlock(d, reasonFor(d));
  }

  // A limit naming a zone that was not imported cannot be enforced: say so where it is used.
  const zoneNames = new Set([...reqZones.map((z) => z.name), ...connZones.map((z) => z.name)]);
  for (const r of routes) {
    for (const l of [...r.limit_req, ...r.limit_conn]) {
      if (!zoneNames.has(l.zone)) {
        const [file, line] = splitAt(l.at);
        const why = badZones.has(l.zone) ? `its zone ${l.zone} (${badZones.get(l.zone)}) was not translated` : `unknown zone ${l.zone}`;
        if (!untranslated.some((u) => u.file === file && u.line === line)) untranslated.push({ file, line, directive: `zone ${l.zone}`, reason: `${why}; the limit is left out of route ${r.name}` });
      }
    }
  }
  const clean = routes.map((r) => ({
    ...r,
    limit_req: r.limit_req.filter((l) => zoneNames.has(l.zone)),
    limit_conn: r.limit_conn.filter((l) => zoneNames.has(l.zone)),
  }));

  untranslated.sort(byPlace);
  notes.sort(byPlace);
  return { server, reqZones, connZones, upstreams, routes: clean, translated, untranslated, notes };
}

/**
 * weight, backup, max_fails and fail_timeout onto the target; false when the value is not
 * one nginx would accept (the caller reports it). nginx's implicit max_fails=1
 * fail_timeout=10s is not imported: nginx counts only errors and timeouts, Sluice's
 * outlier detection also counts 5xx, so a default of one failure would eject a backend
 * for a single 503.
 */
function serverParam(t: ImportedTarget, name: string, value: string): boolean {
  switch (name) {
    case 'weight':
      if (!/^[1-9]\d*$/.test(value)) return false;
      t.weight = Number(value);
      return true;
    case 'backup':
      if (value !== '' ) return false;
      t.backup = true;
      return true;
    case 'max_fails':
      if (!/^\d+$/.test(value)) return false;
      t.max_fails = Number(value);
      return true;
    case 'fail_timeout': {
      const ms = nginxTimeMs(value);
      if (ms === undefined || ms < 1) return false;
      t.fail_timeout_ms = ms;
      return true;
    }
    default:
      return false;
  }
}

/** nginx time syntax: `10`, `10s`, `500ms`, `1m30s`, units ms s m h d (a bare number is seconds). */
function nginxTimeMs(v: string): number | undefined {
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

function byPlace(a: ReportItem, b: ReportItem): number {
  return a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line;
}

function splitAt(s: string): [string, number] {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

/** `proxy_http_version 1.1` and `proxy_set_header Connection ""`: what Sluice does anyway. */
function keepAliveIdiom(d: Directive): boolean {
  if (d.name === 'proxy_http_version') return d.args[0] === '1.1';
  return d.name === 'proxy_set_header' && d.args.length === 2 && d.args[0]!.toLowerCase() === 'connection' && d.args[1] === '';
}

function reasonFor(d: Directive): string {
  const n = d.name;
  if (n === 'if') return 'conditional configuration (if) has no Sluice equivalent';
  if (n === 'map' || n === 'geo' || n === 'split_clients') return `${n} computes variables; Sluice has no variables`;
  if (n === 'rewrite' || n === 'return' || n === 'try_files' || n === 'error_page') return `${n}: Sluice does not rewrite, redirect or answer locally; it routes and proxies`;
  if (n.startsWith('ssl_')) return 'TLS settings: Sluice listens plain HTTP (terminate TLS in front of it)';
  if (n.startsWith('proxy_')) return 'proxy setting with no Sluice equivalent (Sluice sets X-Forwarded-*, X-Request-Id and strips hop-by-hop headers itself)';
  if (n === 'auth_basic' || n === 'auth_request' || n === 'allow' || n === 'deny' || n === 'satisfy') return 'access control: the imported routes are public; add Sluice keys and plans (routes[].public: false) for auth';
  if (n.endsWith('_log') || n === 'log_format') return 'logging: Sluice writes one JSON access line per request (log.access)';
  if (['worker_processes', 'worker_connections', 'events', 'user', 'pid', 'worker_rlimit_nofile', 'load_module', 'daemon', 'master_process'].includes(n)) return 'nginx process setting with no Sluice equivalent';
  if (n === 'upstream') return 'upstream blocks are read inside http only';
  return 'no Sluice equivalent';
}

function quoteArg(a: string): string {
  return a === '' || /[\s;{}"'#]/.test(a) ? JSON.stringify(a) : a;
}

/** `host`, `host:port`, `[v6]:port`, with nginx's default port. */
function withPort(addr: string, def = 80): string {
  if (/^\[[^\]]+\]:\d+$/.test(addr) || /^[^:[\]]+:\d+$/.test(addr)) return addr;
  return `${addr}:${def}`;
}

function parseListen(addr: string): { host: string | undefined; port: number } | undefined {
  if (addr.startsWith('unix:')) return undefined;
  let host: string | undefined;
  let port: string;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (v6 !== null) { host = v6[1]!; port = v6[2] ?? '80'; }
  else if (/^\d+$/.test(addr)) port = addr;
  else {
    const i = addr.lastIndexOf(':');
    if (i === -1) { host = addr; port = '80'; } else { host = addr.slice(0, i); port = addr.slice(i + 1); }
  }
  if (host === '*') host = '0.0.0.0';
  if (!/^\d+$/.test(port) || Number(port) > 65535) return undefined;
  return { host, port: Number(port) };
}

function uniqueName(base: string, taken: ReadonlyMap<string, unknown>): string {
  let name = base;
  for (let k = 2; taken.has(name); k++) name = `${base}-${k}`;
  return name;
}
