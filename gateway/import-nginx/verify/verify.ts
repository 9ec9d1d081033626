// `sluice import-nginx --verify`: the original config in a real nginx (from the PATH)
// and the imported one in Sluice, side by side on loopback ports, in front of the same
// echo upstreams; the same generated requests to both; every difference reported, and
// each one the import report does not already list counts against the exit code.

import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { ImportResult } from '../result.js';
import type { VerifyDifference, VerifySummary } from '../report.js';
import type { Scope } from '../scope.js';
import { compare, type CompareContext } from './compare.js';
import { startEcho, type EchoServer } from './echo.js';
import { freePort, startNginx, startSluice, throwawayCertificate, type Running } from './processes.js';
import { listenKey, luaStubs, renderNginx } from './render-nginx.js';
import { generateRequests, type ServerTargets } from './requests.js';
import { send } from './send.js';

export interface VerifyResult {
  readonly summary: VerifySummary | null;
  readonly errors: string[];
}

const START_TIMEOUT_MS = 20_000;
/** Times nginx and Sluice are started on freshly picked ports when one was taken meanwhile. */
const PORT_ATTEMPTS = 3;
const CONCURRENCY = 8;
/** Header values that differ on every request by design: compared by presence only. */
const VARYING = /\$(request_id|msec|time_\w+|connection\w*|pid|remote_port|request_time|bytes_sent|date_\w+|cookie_\w+)/;

/** `freePort`: how a loopback port is picked (a test hands out taken ones). */
export async function verifyImport(res: ImportResult, o: { readonly freePort?: () => Promise<number> } = {}): Promise<VerifyResult> {
  const pickPort = o.freePort ?? freePort;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-verify-'));
  // Run as root, nginx's workers are nobody: they must reach the Lua stubs and temp paths.
  chmodSync(dir, 0o755);
  const echoes: EchoServer[] = [];
  const running: Running[] = [];
  try {
    const cert = await throwawayCertificate(dir);
    const cfg = structuredClone(res.imported.config) as EditableConfig;
    const cx = res.context;

    // One echo per Sluice upstream; nginx's upstream blocks and proxy_pass origins point at the same ones.
    const blockEcho = new Map<string, string>();
    const originEcho = new Map<string, string>();
    for (const u of cx.upstreams.values()) {
      const tls = u.targets[0]!.url.startsWith('https:');
      const e = await startEcho(u.name, u.proxyHost, tls ? { cert: cert.certPem, key: cert.keyPem } : undefined);
      echoes.push(e);
      if (u.block && !u.name.endsWith('-https')) blockEcho.set(u.name, `127.0.0.1:${e.port}`);
      else if (!u.block) originEcho.set(u.targets[0]!.url, `${tls ? 'https' : 'http'}://127.0.0.1:${e.port}`);
      const up = cfg.upstreams[u.name]!;
      up.targets = [`${tls ? 'https' : 'http'}://127.0.0.1:${e.port}`];
    }

    // Listeners: a loopback port per side for each original address:port.
    const keys = new Map<string, { nginx: number; sluice: number; tls: boolean; name: string; original: number }>();
    const http = res.root.children.find((c) => c.kind === 'http');
    const servers = http?.children.filter((c) => c.kind === 'server') ?? [];
    const serverKeys = new Map<Scope, string[]>();
    for (const s of servers) {
      const ks: string[] = [];
      for (const l of s.own.listens.length > 0 ? s.own.listens.map((x) => listenKey(x.d.args[0]!)) : [{ host: '*', port: 80 }]) {
        if (l === undefined) continue;
        const key = `${l.host}:${l.port}`;
        if (!ks.includes(key)) ks.push(key);
      }
      serverKeys.set(s, ks);
    }
    // The importer names listeners in the order it meets address:port pairs; meet them in the same order.
    const ordered: string[] = [];
    for (const s of servers) for (const k of serverKeys.get(s)!) if (!ordered.includes(k)) ordered.push(k);
    const listeners = cfg.listeners;
    const originalPorts = listeners.map((l) => Number(l.port));
    const pickPorts = async (): Promise<void> => {
      for (const [i, key] of ordered.entries()) {
        const l = listeners[i]!;
        const entry = { nginx: await pickPort(), sluice: await pickPort(), tls: l.tls !== undefined, name: String(l.name), original: originalPorts[i]! };
        keys.set(key, entry);
        l.host = '127.0.0.1';
        l.port = entry.sluice;
        if (l.tls !== undefined) for (const c of l.tls.certificates) { c.cert = cert.cert; c.key = cert.key; }
      }
    };
    stripLimits(cfg);
    cfg.admin = { host: '127.0.0.1', port: 0 };
    // info: its 'sluice listening' line is how the start is known (processes.ts).
    cfg.log = { level: 'info', access: false };

    const luaDir = join(dir, 'lua');
    for (const [name, text] of Object.entries(luaStubs())) {
      mkdirSync(dirname(join(luaDir, name)), { recursive: true });
      writeFileSync(join(luaDir, name), text);
    }
    // The ports are found free, then bound a moment later by nginx and by Sluice: another
    // process may take one in between (a parallel test run did). Then pick them again.
    let ports = [...keys.values()];
    for (let attempt = 1; ; attempt++) {
      await pickPorts();
      const nginxConf = renderNginx({
        tree: res.tree, root: res.root, at: (d) => cx.at(d), dir, prefix: cx.prefix,
        listenPort: (key) => keys.get(key)?.nginx ?? 9, blockEcho, originEcho, cert: cert.cert, key: cert.key, luaStubDir: luaDir,
      });
      writeFileSync(join(dir, 'nginx.conf'), nginxConf);
      ports = [...keys.values()];
      const started = running.length;
      try {
        running.push(await startNginx(dir, ports.map((p) => p.nginx), START_TIMEOUT_MS));
        running.push(await startSluice(dir, stringify(cfg), ports.map((p) => p.sluice), cert.cert, START_TIMEOUT_MS));
        break;
      } catch (err) {
        await Promise.all(running.splice(started).map((r) => r.stop()));
        if (attempt === PORT_ATTEMPTS || !/EADDRINUSE|Address already in use/.test((err as Error).message)) throw err;
      }
    }

    const defaults = new Set<Scope>();
    for (const key of ordered) {
      const first = servers.find((s) => s.own.listens.some((l) => l.defaultServer && `${listenKey(l.d.args[0]!)?.host}:${listenKey(l.d.args[0]!)?.port}` === key))
        ?? servers.find((s) => serverKeys.get(s)!.includes(key));
      if (first !== undefined) defaults.add(first);
    }
    const reportName = new Map(res.report.servers.map((r) => [r.at, r.name]));
    const targets: ServerTargets[] = servers.map((s) => ({ server: s, name: reportName.get(cx.at(s.d!)) ?? '', listeners: serverKeys.get(s)!, isDefault: defaults.has(s) }));
    const requests = generateRequests(targets);
    const ccx: CompareContext = {
      report: res.report,
      requestHeaders: headerNames(res.root, 'proxySetHeader'),
      responseHeaders: new Set(headerNames(res.root, 'addHeader').keys()),
      nginxPorts: new Map(ports.map((p) => [p.nginx, p.original])),
      sluicePorts: new Map(ports.map((p) => [p.sluice, p.original])),
    };
    const differences: VerifyDifference[] = [];
    let same = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const r = requests[next++]!;
        const k = keys.get(r.listener)!;
        const [n, s] = await Promise.all([send(r, k.nginx, k.tls), send(r, k.sluice, k.tls)]);
        const d = compare(r, n, s, ccx);
        if (d.length === 0) same++;
        differences.push(...d);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const unlisted = differences.filter((d) => d.listed_by === undefined);
    return {
      summary: {
        requests: requests.length, same,
        listed_differences: differences.length - unlisted.length,
        unlisted_differences: unlisted.length,
        differences: [...unlisted, ...differences.filter((d) => d.listed_by !== undefined)],
      },
      errors: [],
    };
  } catch (err) {
    return { summary: null, errors: [`verify could not run: ${(err as Error).message}`] };
  } finally {
    await Promise.all(running.map((r) => r.stop()));
    await Promise.all(echoes.map((e) => e.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A route of the imported config (plain data), as far as --verify edits it. */
interface EditableRoute {
  [field: string]: unknown;
  routes?: EditableRoute[];
}

/** The imported config (plain data, build.ts), as far as --verify edits it. */
interface EditableConfig {
  [section: string]: unknown;
  upstreams: Record<string, { targets: string[] }>;
  listeners: { name: string; host: string; port: number; tls?: { certificates: { cert: string; key: string }[] } }[];
  virtual_hosts?: { routes?: EditableRoute[] }[];
  routes?: EditableRoute[];
}

/** Limits are off on both sides: --verify compares routing (lua-compat's replay compares limits). */
function stripLimits(cfg: EditableConfig): void {
  delete cfg.limit_req_zones;
  delete cfg.limit_conn_zones;
  const visit = (routes: EditableRoute[] | undefined): void => {
    for (const r of routes ?? []) {
      for (const k of ['limit_req', 'limit_req_status', 'limit_conn', 'limit_conn_status']) delete r[k];
      visit(r.routes);
    }
  };
  for (const v of cfg.virtual_hosts ?? []) visit(v.routes);
  visit(cfg.routes);
}

/** Every header name the config sets (request) or adds (response), with whether its value varies per request. */
function headerNames(root: Scope, field: 'proxySetHeader' | 'addHeader'): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const skip = new Set(['host', 'connection', 'upgrade', 'content-length', 'x-sluice-verify-at']);
  const visit = (sc: Scope): void => {
    for (const e of sc.s[field] ?? []) if (!skip.has(e.name)) out.set(e.name, (out.get(e.name) ?? false) || VARYING.test(e.value));
    for (const c of sc.children) visit(c);
  };
  visit(root);
  return out;
}

