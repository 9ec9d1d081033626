// OpenResty's lua-resty-limit-traffic, recognised in a Lua handler's source: limiters
// made with constant arguments (`limit_req.new("store", 200, 100)`) and applied with
// `lim:incoming(ngx.var.<name>, true)` become Sluice limits. Whatever else the code does
// (another exit, a redirect, a header, another module) is reported as not enforced: a
// handler is translated only as far as it is understood.

import { zoneKey } from './directives/limit-zones.js';
import type { LuaLimit, ZoneKey } from './scope.js';

export interface LuaAnalysis {
  readonly limits: LuaLimit[];
  /** What the code does besides the limiters, in words; empty when it does nothing else. */
  readonly other: string[];
  /** True when the code only releases limit.conn slots (`lim:leaving()`, a log phase). */
  readonly leavingOnly: boolean;
}

const STATUS_NAMES: Record<string, number> = {
  HTTP_TOO_MANY_REQUESTS: 429, HTTP_SERVICE_UNAVAILABLE: 503, HTTP_FORBIDDEN: 403, HTTP_INTERNAL_SERVER_ERROR: 500,
  HTTP_BAD_REQUEST: 400, HTTP_UNAUTHORIZED: 401, HTTP_NOT_FOUND: 404, HTTP_NOT_ALLOWED: 405, HTTP_GONE: 410,
};

/** Comments out, strings kept (dictionary names are strings). */
function stripComments(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '-' && src[i + 1] === '-') {
      const m = /^--\[(=*)\[/.exec(src.slice(i));
      if (m !== null) {
        const end = src.indexOf(`]${m[1]}]`, i + m[0].length);
        i = end === -1 ? src.length : end + m[1]!.length + 2;
      } else {
        while (i < src.length && src[i] !== '\n') i++;
      }
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

const NUM = '(\\d+(?:\\.\\d+)?)';
const STR = `["']([^"']+)["']`;

export function analyzeLua(source: string): LuaAnalysis {
  const src = stripComments(source);
  // Module bindings: local limit_req = require "resty.limit.req"
  const modules = new Map<string, string>();
  for (const m of src.matchAll(/(?:local\s+)?(\w+)\s*=\s*require\s*\(?\s*["']resty\.limit\.(req|count|conn|traffic)["']\s*\)?/g)) modules.set(m[1]!, m[2]!);
  // Inline: require("resty.limit.req").new(...)
  const limiters = new Map<string, { kind: string; dict: string; a: number; b: number | undefined; c: number | undefined }>();
  const ctor = new RegExp(`(?:local\\s+)?(\\w+)\\s*(?:,\\s*\\w+\\s*)?=\\s*(?:(\\w+)|require\\s*\\(?\\s*["']resty\\.limit\\.(\\w+)["']\\s*\\)?)\\.new\\(\\s*${STR}\\s*,\\s*${NUM}\\s*(?:,\\s*${NUM}\\s*)?(?:,\\s*${NUM}\\s*)?\\)`, 'g');
  for (const m of src.matchAll(ctor)) {
    const kind = m[2] !== undefined ? modules.get(m[2]) : m[3];
    if (kind === undefined) continue;
    limiters.set(m[1]!, { kind, dict: m[4]!, a: Number(m[5]), b: m[6] === undefined ? undefined : Number(m[6]), c: m[7] === undefined ? undefined : Number(m[7]) });
  }
  const other: string[] = [];
  const limits: LuaLimit[] = [];
  const exits = [...src.matchAll(/ngx\.exit\s*\(\s*(\d{3}|ngx\.(\w+))\s*\)/g)].map((m) => (m[2] !== undefined ? STATUS_NAMES[m[2]] ?? -1 : Number(m[1])));
  // The status a rejected request gets: the limiter's exit that is not the error path (500).
  const reject = exits.find((s) => s >= 400 && s !== 500) ?? 503;
  const sleeps = /ngx\.sleep\s*\(/.test(src);
  const incoming = [...src.matchAll(/(\w+)\s*:\s*incoming\s*\(\s*([\w.]+)\s*,\s*true\s*\)/g)];
  for (const m of incoming) {
    const lim = limiters.get(m[1]!);
    const key = keyOf(src, m[2]!);
    if (lim === undefined) { other.push(`${m[1]}:incoming(…) on a limiter not made here with constant arguments`); continue; }
    if (key === undefined) { other.push(`${m[1]}:incoming(${m[2]}, true): the key is not ngx.var.binary_remote_addr, ngx.var.remote_addr or ngx.var.http_<name>`); continue; }
    if (lim.kind === 'req' && lim.b !== undefined) {
      limits.push({ kind: 'req', key, perSecond: lim.a, burst: lim.b, nodelay: !sleeps, status: reject, dict: lim.dict });
    } else if (lim.kind === 'count' && lim.b !== undefined) {
      // A fixed window of `a` requests per `b` seconds, as a bucket with the same long-run
      // rate that lets `a` through at once (the window's worth).
      limits.push({ kind: 'req', key, perSecond: lim.a / lim.b, burst: Math.max(0, lim.a - 1), nodelay: true, status: reject, dict: lim.dict });
    } else if (lim.kind === 'conn' && lim.b !== undefined) {
      limits.push({ kind: 'conn', key, max: Math.floor(lim.a + lim.b), status: reject, dict: lim.dict });
    } else {
      other.push(`resty.limit.${lim.kind} ${m[1]}: not a form Sluice translates`);
    }
  }
  for (const [name, lim] of limiters) {
    if (!incoming.some((m) => m[1] === name) && !new RegExp(`\\b${name}\\s*:\\s*leaving\\b`).test(src)) other.push(`resty.limit.${lim.kind} ${name} is made but never applied with incoming(key, true)`);
  }
  if (/resty\.limit\.traffic/.test(src)) other.push('resty.limit.traffic.combine: combined limiters are not translated');
  const known = new Set([reject, 500]);
  for (const s of exits) if (!known.has(s) || (limits.length === 0 && s !== 500)) other.push(`ngx.exit(${s})`);
  for (const [re, what] of EFFECTS) if (re.test(src)) other.push(what);
  for (const m of src.matchAll(/require\s*\(?\s*["']([\w.]+)["']/g)) {
    if (!/^resty\.(limit\.(req|count|conn)|core)$/.test(m[1]!)) other.push(`require "${m[1]}"`);
  }
  const leavingOnly = limits.length === 0 && /:\s*leaving\s*\(/.test(src) && other.length === 0;
  if (limits.length === 0 && !leavingOnly && other.length === 0 && /\S/.test(src.replace(/\b(local|if|then|end|else|return|not|nil|err|ngx\.log\([^)]*\))\b/g, ''))) {
    other.push('Lua code that is not a limiter');
  }
  return { limits, other: [...new Set(other)], leavingOnly };
}

const EFFECTS: readonly [RegExp, string][] = [
  [/ngx\.redirect\s*\(/, 'ngx.redirect'],
  [/ngx\.exec\s*\(/, 'ngx.exec'],
  [/ngx\.(say|print)\s*\(/, 'writes a response body (ngx.say/ngx.print)'],
  [/ngx\.header\b/, 'sets response headers (ngx.header)'],
  [/ngx\.req\.(set|clear)_\w+/, 'changes the request (ngx.req.set_*/clear_*)'],
  [/ngx\.var\.\w+\s*=[^=]/, 'assigns nginx variables'],
  [/ngx\.status\s*=[^=]/, 'sets the status'],
  [/ngx\.location\.capture/, 'makes subrequests'],
  [/ngx\.(socket|timer)\b/, 'opens sockets or timers'],
];

/** `ngx.var.NAME`, or a local assigned from one (`local key = ngx.var.binary_remote_addr`). */
function keyOf(src: string, expr: string): ZoneKey | undefined {
  const direct = /^ngx\.var\.(\w+)$/.exec(expr);
  if (direct !== null) return zoneKey(`$${direct[1]}`);
  const assigned = new RegExp(`(?:local\\s+)?${expr}\\s*=\\s*ngx\\.var\\.(\\w+)\\s*(?:\\n|;|$)`, 'm').exec(src);
  return assigned === null ? undefined : zoneKey(`$${assigned[1]}`);
}
