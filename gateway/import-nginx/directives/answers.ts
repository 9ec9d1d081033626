// The rewrite module's directives (return, rewrite, set, if) and the others that decide
// the answer without a proxy: internal, allow/deny, error_page.

import type { Directive } from '../parse.js';
import type { ReturnAction } from '../scope.js';
import type { DirectiveHandler } from '../table.js';

export function parseReturn(d: Directive): ReturnAction | undefined {
  const [a, b] = d.args;
  if (d.args.length === 1 && a !== undefined && /^(https?:\/\/|\$scheme)/.test(a)) return { status: 302, text: a, d };
  if (a === undefined || !/^\d{3}$/.test(a) || d.args.length > 2) return undefined;
  return { status: Number(a), text: b, d };
}

export const returnDirective: DirectiveHandler = {
  names: ['return'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    const r = parseReturn(d);
    if (r === undefined) return cx.block(scope, d, 'expected: return CODE [TEXT|URL] or return URL');
    // Only the first return of a level ever runs (it ends the rewrite phase).
    if (scope.own.ret === undefined && scope.own.rewrites.every((w) => w.flag !== 'break' && w.flag !== 'last')) scope.own.ret = r;
    else cx.note(scope, d, 'never reached: an earlier return or rewrite of this level ends the rewrite phase first');
  },
};

export const rewrite: DirectiveHandler = {
  names: ['rewrite'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    const [regex, replacement, flag] = d.args;
    if (regex === undefined || replacement === undefined || d.args.length > 3 || (flag !== undefined && !['last', 'break', 'redirect', 'permanent'].includes(flag))) {
      return cx.block(scope, d, 'expected: rewrite REGEX REPLACEMENT [last|break|redirect|permanent]');
    }
    scope.own.rewrites.push({ regex, replacement, flag, d });
  },
};

export const set: DirectiveHandler = {
  names: ['set'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    const [name, value] = d.args;
    if (d.args.length !== 2 || !name!.startsWith('$')) return cx.list(scope, d, 'expected: set $NAME VALUE');
    scope.own.sets.set(name!.slice(1), { value: value!, d });
    // A constant is substituted where it is used (proxy_pass $up); the use is what counts.
    if (value!.includes('$')) cx.list(scope, d, 'a variable computed per request: a route that uses it is not translated');
    else cx.ok();
  },
};

export const internal: DirectiveHandler = {
  names: ['internal'],
  levels: ['location'],
  handle(_d, scope, cx) {
    scope.own.internal = true;
    cx.ok();
  },
};

export const tryFiles: DirectiveHandler = {
  names: ['try_files'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    if (d.args.length < 2) return cx.block(scope, d, 'expected: try_files FILE ... URI|@NAME|=CODE');
    // Worked out per location (build-route.ts): a fallback to a proxying named location
    // translates, with the files left out (listed); anything else is emulated.
    scope.own.tryFiles = d;
  },
};

export const access: DirectiveHandler = {
  names: ['allow', 'deny'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    const list = (scope.s.access ??= []);
    const what = d.args[0];
    if (d.args.length !== 1 || what === undefined) return cx.block(scope, d, `expected: ${d.name} ADDRESS|CIDR|all`);
    if (what.startsWith('unix:')) { cx.note(scope, d, 'unix-socket clients: Sluice has no unix listener'); return; }
    if (what !== 'all' && !/^[0-9a-fA-F.:]+(\/\d{1,3})?$/.test(what)) return cx.block(scope, d, `${what}: not an address, a CIDR or all`);
    list.push({ rule: d.name as 'allow' | 'deny', cidr: what });
    cx.ok();
  },
};

export const errorPage: DirectiveHandler = {
  names: ['error_page'],
  levels: ['http', 'server', 'location'],
  handle(d, scope, cx) {
    (scope.s.errorPage ??= []).push(d);
    const target = d.args[d.args.length - 1] ?? '';
    const changesStatus = d.args.some((a) => a.startsWith('='));
    if (d.args.length < 2 || changesStatus || target.startsWith('@') || /^https?:/.test(target)) {
      // Another status, a named location or a redirect: what the client gets changes.
      cx.list(scope, d, 'the status (or a redirect) nginx answers in place of these errors is not translated: Sluice answers the original status with its JSON error body');
      return;
    }
    cx.ok();
    cx.note(scope, d, `Sluice answers ${d.args.slice(0, -1).join(' ')} with the same status and its JSON error body, not the page ${target}`);
  },
};

export const ifDirective: DirectiveHandler = {
  names: ['if'],
  levels: ['server', 'location'],
  handle(d, scope, cx) {
    // The one server-level form that is common and exact: certbot's
    // `if ($host = www.example.com) { return 301 https://$host$request_uri; }`.
    const cond = /^\(?\$host$/.test(d.args[0] ?? '') ? hostCondition(d.args) : undefined;
    const only = d.block?.length === 1 ? d.block[0]! : undefined;
    const ret = only?.name === 'return' ? parseReturn(only) : undefined;
    if (scope.kind === 'server' && cond !== undefined && ret !== undefined) {
      scope.own.hostReturns.push({ ...cond, ret, d });
      cx.ok();
      cx.ok();
      return;
    }
    if (scope.kind === 'server') {
      // Runs on every request of the server, before any location is chosen.
      cx.listBlock(scope, d, 'a condition evaluated on every request to this server, before any location: not translated, so requests it would answer or change are served by their location');
      return;
    }
    cx.listBlock(scope, d, 'conditional configuration (if) has no Sluice equivalent', 'emulated');
  },
};

function hostCondition(args: readonly string[]): { host: string; regex: boolean; caseless: boolean } | undefined {
  const parts = args.join(' ').replace(/^\(\s*/, '').replace(/\s*\)$/, '').split(/\s+/);
  if (parts.length !== 3 || parts[0] !== '$host') return undefined;
  const [, op, value] = parts as [string, string, string];
  if (op === '=') return { host: value.toLowerCase(), regex: false, caseless: false };
  if (op === '~' || op === '~*') return { host: value, regex: true, caseless: op === '~*' };
  return undefined;
}
