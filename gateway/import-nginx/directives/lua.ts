// OpenResty (ngx_lua): phase handlers given inline (*_by_lua_block) or as files
// (*_by_lua_file). The lua-resty-limit-traffic limiters they apply become Sluice limits
// (lua-limits.ts); any phase handler not translated whole is NOT ENFORCED, in words an
// operator cannot miss, and makes `sluice import-nginx` exit non-zero unless
// --allow-unenforced is given.

import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { analyzeLua } from '../lua-limits.js';
import type { DirectiveHandler } from '../table.js';

const PHASE = /^(rewrite|access|content|header_filter|body_filter|log|balancer|set|ssl_certificate|ssl_session_fetch|ssl_session_store|ssl_client_hello|server_rewrite|exit_worker)_by_lua(_block|_file)?$/;

export const luaPhase: DirectiveHandler = {
  names: ['rewrite', 'access', 'content', 'header_filter', 'body_filter', 'log', 'balancer', 'set', 'ssl_certificate', 'ssl_session_fetch', 'ssl_session_store', 'ssl_client_hello', 'server_rewrite', 'exit_worker']
    .flatMap((p) => [`${p}_by_lua_block`, `${p}_by_lua_file`, `${p}_by_lua`]),
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const phase = PHASE.exec(d.name)![1]!;
    let source = d.lua;
    if (source === undefined && d.name.endsWith('_file')) {
      const path = d.args[d.args.length - 1] ?? '';
      try {
        source = path.includes('$') ? undefined : readFileSync(isAbsolute(path) ? path : join(cx.prefix, path), 'utf8');
      } catch {
        source = undefined;
      }
      if (source === undefined) return cx.notEnforced(scope, d, `NOT ENFORCED: the ${phase} handler ${path} could not be read here, so whatever it checks, limits or changes is not done by Sluice`);
    }
    if (source === undefined) source = d.args[d.args.length - 1] ?? '';
    const a = analyzeLua(source);
    if (phase === 'content') cx.block(scope, d, 'the answer is made by Lua code (content_by_lua)');
    if ((phase === 'access' || phase === 'rewrite') && a.limits.length > 0) {
      scope.s.luaLimits = [...(scope.s.luaLimits ?? []), ...a.limits];
      cx.ok();
      cx.note(scope, d, `lua-resty-limit-traffic → ${a.limits.map((l) => (l.kind === 'req' ? `limit_req ${l.perSecond}r/s burst=${l.burst}${l.nodelay ? ' nodelay' : ''} by ${keyName(l.key)} (status ${l.status})` : `limit_conn ${l.max} by ${keyName(l.key)} (status ${l.status})`)).join('; ')}`);
    } else if (phase === 'log' && a.leavingOnly) {
      cx.ok();
      cx.note(scope, d, 'releases limit.conn slots (lim:leaving()): Sluice releases its limit_conn slots when the request ends');
      return;
    }
    if (a.limits.length === 0 || a.other.length > 0) {
      const what = a.other.length > 0 ? a.other.join('; ') : 'its code';
      cx.notEnforced(scope, d, `NOT ENFORCED: this ${phase}-phase Lua handler is not translated (${what}); Sluice does not run it, so whatever it checks, limits or changes is not done`);
    }
  },
};

function keyName(k: { kind: string; header?: string }): string {
  return k.kind === 'client' ? 'client address' : `header ${k.header}`;
}

export const luaSharedDict: DirectiveHandler = {
  names: ['lua_shared_dict'],
  levels: ['http'],
  handle(d, scope, cx) {
    if (d.args.length !== 2) return cx.list(scope, d, 'expected: lua_shared_dict NAME SIZE');
    cx.sharedDicts.add(d.args[0]!);
    cx.ok();
    cx.note(scope, d, 'a limiter store: the limits that use it keep their state in Sluice\'s store instead');
  },
};

export const luaInit: DirectiveHandler = {
  names: ['init_by_lua_block', 'init_by_lua_file', 'init_by_lua', 'init_worker_by_lua_block', 'init_worker_by_lua_file', 'init_worker_by_lua'],
  levels: ['http'],
  handle(d, scope, cx) {
    const src = d.lua ?? '';
    const onlyRequires = d.lua !== undefined && src.replace(/--[^\n]*/g, '').split(/[\n;]/).every((l) => l.trim() === '' || /^(local\s+\w+\s*=\s*)?require\s*\(?\s*["'][\w.]+["']\s*\)?$/.test(l.trim()));
    if (onlyRequires) { cx.ok(); cx.note(scope, d, 'loads Lua modules only; nothing to translate'); return; }
    cx.notEnforced(scope, d, 'NOT ENFORCED: Lua start-up code is not run by Sluice (timers, preloaded data, anything it sets up for the handlers)');
  },
};

export const luaSettings: DirectiveHandler = {
  names: ['lua_package_path', 'lua_package_cpath', 'lua_code_cache', 'lua_need_request_body', 'lua_socket_log_errors', 'lua_max_pending_timers', 'lua_max_running_timers',
    'lua_socket_connect_timeout', 'lua_socket_read_timeout', 'lua_socket_send_timeout', 'lua_socket_pool_size', 'lua_ssl_trusted_certificate', 'lua_ssl_verify_depth', 'lua_check_client_abort', 'lua_transform_underscores_in_response_headers'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    cx.ok();
    cx.note(scope, d, 'a Lua runtime setting: nothing to translate on its own');
  },
};
