// The original config as nginx can run it here, unprivileged and side by side with
// Sluice: one file (includes spliced in), listens on free loopback ports, upstreams
// replaced by echo servers, certificates by a throwaway one, runtime paths in a temp
// dir, limits off (rate limiting is the golden-trace replay's business, not --verify's),
// and a marker header on every answer naming the location that made it.

import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { DATA_BLOCKS } from '../context.js';
import type { Directive } from '../parse.js';
import type { Scope } from '../scope.js';

export const MARKER = 'x-sluice-verify-at';

export interface RenderInput {
  readonly tree: readonly Directive[];
  readonly root: Scope;
  /** `file:line` as the report writes it. */
  readonly at: (d: Directive) => string;
  readonly dir: string;
  /** The original config's directory (nginx's prefix), for relative paths. */
  readonly prefix: string;
  /** Listener key (`host:port`, `*` for every address) → the loopback port nginx uses for it. */
  readonly listenPort: (key: string) => number;
  /** An `upstream` block's name → its echo's address. */
  readonly blockEcho: ReadonlyMap<string, string>;
  /** A proxy_pass origin (`http://host:port`) → the echo standing in for it (`http://127.0.0.1:N`). */
  readonly originEcho: ReadonlyMap<string, string>;
  readonly cert: string;
  readonly key: string;
  readonly luaStubDir: string;
}

const DROP_MAIN = new Set(['user', 'pid', 'daemon', 'master_process', 'error_log', 'worker_processes', 'lock_file', 'working_directory', 'load_module']);
const DROP_ANY = new Set(['access_log', 'error_log', 'limit_req', 'limit_conn', 'client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path',
  'ssl_trusted_certificate', 'ssl_client_certificate', 'ssl_dhparam', 'ssl_stapling', 'ssl_stapling_verify', 'ssl_stapling_file', 'ssl_session_ticket_key', 'ssl_crl', 'ssl_password_file', 'ssl_verify_client', 'lua_package_path']);
const LUA_MODULES = ['/usr/lib/nginx/modules/ndk_http_module.so', '/usr/lib/nginx/modules/ngx_http_lua_module.so'];

function q(a: string): string {
  return `"${a.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function usesLua(ds: readonly Directive[]): boolean {
  return ds.some((d) => /lua/.test(d.name) || (d.block !== undefined && usesLua(d.block)));
}

export function renderNginx(inp: RenderInput): string {
  const scopeOf = new Map<Directive, Scope>();
  const index = (sc: Scope): void => { if (sc.d !== undefined) scopeOf.set(sc.d, sc); for (const c of sc.children) index(c); };
  index(inp.root);
  const lua = usesLua(inp.tree);
  const head = [`pid ${q(join(inp.dir, 'nginx.pid'))};`, `error_log ${q(join(inp.dir, 'error.log'))} warn;`, 'worker_processes 1;'];
  // ndk first: the Lua module needs its symbols.
  if (lua) head.unshift(...LUA_MODULES.filter((m) => existsSync(m)).map((m) => `load_module ${m};`));
  const hasEvents = inp.tree.some((d) => d.name === 'events');
  if (!hasEvents) head.push('events { worker_connections 1024; }');
  const out = [...head];
  const runPaths = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((p) => `${p === 'body' ? 'client_body' : p}_temp_path ${q(join(inp.dir, p))};`);

  const render = (ds: readonly Directive[], parent: Directive | undefined, depth: number): void => {
    const pad = '  '.repeat(depth);
    const inData = parent !== undefined && DATA_BLOCKS.has(parent.name);
    const inUpstream = parent?.name === 'upstream';
    let echoed = false;
    const seenListen = new Set<string>();
    for (const d of ds) {
      if (inData) { out.push(`${pad}${[d.name, ...d.args].map(q).join(' ')};`); continue; }
      if (parent === undefined && DROP_MAIN.has(d.name)) continue;
      if (DROP_ANY.has(d.name) || d.name.startsWith('proxy_cache') || d.name.startsWith('fastcgi_cache')) continue;
      if (d.name === 'include') continue; // only unreadable ones are left in the tree
      if (inUpstream && d.name === 'server') {
        if (!echoed) out.push(`${pad}server ${inp.blockEcho.get(parent!.args[0]!) ?? '127.0.0.1:9'};`);
        echoed = true;
        continue;
      }
      if (inUpstream && (d.name === 'zone' || d.name === 'resolver' || d.name === 'resolver_timeout')) continue;
      let args = [...d.args];
      if (d.name === 'listen') {
        const l = listenKey(args[0] ?? '');
        if (l === undefined) continue;
        const key = `${l.host}:${l.port}`;
        if (seenListen.has(key)) continue;
        seenListen.add(key);
        args = [`127.0.0.1:${inp.listenPort(key)}`, ...args.slice(1).filter((p) => p === 'ssl' || p === 'http2' || p === 'default_server' || p === 'default')];
      } else if (d.name === 'ssl_certificate') args = [inp.cert];
      else if (d.name === 'ssl_certificate_key') args = [inp.key];
      else if (d.name === 'proxy_pass' || d.name === 'set') args = args.map((a) => remapOrigins(a, inp.originEcho));
      else if (d.name.endsWith('_by_lua_file')) args = args.map((a, i) => (i === args.length - 1 && !isAbsolute(a) ? join(inp.prefix, a) : a));
      const headText = `${pad}${d.name}${args.length > 0 ? ` ${args.map(q).join(' ')}` : ''}`;
      if (d.lua !== undefined) { out.push(`${headText} {${d.lua}}`); continue; }
      if (d.block === undefined) { out.push(`${headText};`); continue; }
      out.push(`${headText} {`);
      if (d.name === 'http') {
        out.push(`${pad}  access_log off;`, ...runPaths.map((l) => `${pad}  ${l}`));
        if (lua) out.push(`${pad}  lua_package_path ${q(`${inp.luaStubDir}/?.lua;${luaPath(inp.tree)}`)};`);
      }
      const sc = scopeOf.get(d);
      if (sc !== undefined && (d.name === 'server' || d.name === 'location')) out.push(...marker(sc, inp, `${pad}  `));
      render(d.block, d, depth + 1);
      out.push(`${pad}}`);
    }
  };
  render(inp.tree, undefined, 0);
  return `${out.join('\n')}\n`;
}

/**
 * add_header at a level replaces what the level would inherit; so next to the marker go
 * the headers the level inherited when it had none of its own, as nginx would have added them.
 */
function marker(sc: Scope, inp: RenderInput, pad: string): string[] {
  const lines: string[] = [];
  if (sc.s.addHeader === undefined) {
    for (const e of sc.effective('addHeader') ?? []) lines.push(`${pad}add_header ${e.d.args.map(q).join(' ')};`);
  }
  lines.push(`${pad}add_header ${MARKER} ${q(`${sc.kind === 'server' ? 'server ' : ''}${inp.at(sc.d!)}`)} always;`);
  return lines;
}

function luaPath(tree: readonly Directive[]): string {
  const find = (ds: readonly Directive[]): string | undefined => {
    for (const d of ds) {
      if (d.name === 'lua_package_path') return d.args[0];
      if (d.block !== undefined) { const f = find(d.block); if (f !== undefined) return f; }
    }
    return undefined;
  };
  const p = find(tree);
  return p === undefined ? ';' : p.endsWith(';;') ? p : `${p};;`;
}

/** The same key the importer gives a listener: `host:port`, `*` for every address. */
export function listenKey(addr: string): { host: string; port: number } | undefined {
  if (addr.startsWith('unix:')) return undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  let host: string;
  let port: string;
  if (v6 !== null) { host = v6[1]!; port = v6[2] ?? '80'; }
  else if (/^\d+$/.test(addr)) { host = '*'; port = addr; }
  else {
    const i = addr.lastIndexOf(':');
    if (i === -1) { host = addr; port = '80'; } else { host = addr.slice(0, i); port = addr.slice(i + 1); }
  }
  if (host === '*' || host === '::' || host === '0.0.0.0') host = '*';
  return { host, port: Number(port) };
}

function remapOrigins(arg: string, map: ReadonlyMap<string, string>): string {
  let out = arg;
  // Longest first, so http://a:8080 is not half-replaced by http://a.
  for (const [from, to] of [...map].sort((a, b) => b[0].length - a[0].length)) {
    const bare = from.replace(/:(80|443)$/, '');
    for (const f of new Set([from, bare])) {
      out = out.replace(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[/?$]|$)`, 'g'), to);
    }
  }
  return out;
}

export function luaStubs(): Record<string, string> {
  // lua-resty-limit-traffic stand-ins that admit everything: --verify compares routing;
  // the limits themselves are compared by the golden-trace replay (lua-compat/).
  const stub = 'local _M = {}\nlocal mt = { __index = { incoming = function() return 0, 0 end, leaving = function() return 0 end, uncommit = function() return 0 end, is_committed = function() return false end, set_rate = function() end, set_burst = function() end, set_conn = function() end } }\nfunction _M.new() return setmetatable({}, mt) end\nreturn _M\n';
  return { 'resty/limit/req.lua': stub, 'resty/limit/count.lua': stub, 'resty/limit/conn.lua': stub };
}

