// upstream NAME { server …; keepalive N; least_conn; … } → upstreams.NAME. The block's
// own directives are a small table of their own (a `server` here is a target, not a
// virtual host).

import type { Balancer, ImportedTarget, ImportedUpstream } from '../context.js';
import type { Directive } from '../parse.js';
import type { Scope } from '../scope.js';
import type { DirectiveHandler, Walker } from '../table.js';
import { nginxTimeMs, withPort } from './values.js';

type Inner = (c: Directive, u: ImportedUpstream, scope: Scope, cx: Walker) => Balancer | undefined | void;

const SERVER_PARAM_REASON: Record<string, string> = {
  weight: 'expected weight=N (N >= 1)',
  max_fails: 'expected max_fails=N',
  fail_timeout: 'expected fail_timeout=TIME (e.g. 10s, 500ms, 1m)',
  max_conns: 'no per-target connection cap beyond the pool size (connections)',
  slow_start: 'no slow start',
  resolve: 'targets are resolved by the OS resolver on connect; no periodic re-resolution',
};

const INNER: Record<string, Inner> = {
  server(c, u, scope, cx) {
    const [addr, ...params] = c.args;
    if (addr === undefined) return cx.list(scope, c, 'server without an address');
    if (addr.startsWith('unix:')) return cx.list(scope, c, 'unix-socket upstreams are not supported: Sluice targets are http://host:port');
    if (params.includes('down')) return cx.list(scope, c, '"down": the server is marked permanently unavailable, so it is not imported as a target');
    const t: ImportedTarget = { url: `http://${withPort(addr)}` };
    u.targets.push(t);
    cx.ok();
    for (const p of params) {
      const name = p.split('=')[0]!;
      if (!serverParam(t, name, p.slice(name.length + 1))) {
        cx.item(scope, c, 'listed', SERVER_PARAM_REASON[name] ?? 'unknown server parameter', `server ${addr} ${p}`);
      }
    }
    if (t.max_fails !== undefined || t.fail_timeout_ms !== undefined) {
      cx.note(scope, c, 'max_fails/fail_timeout → passive ejection: nginx counts failures (errors and timeouts) within fail_timeout, '
        + 'Sluice counts them in a row; the ejection lasts fail_timeout in both');
    }
  },
  keepalive(c, _u, scope, cx) {
    if (c.args.length !== 1 || !/^\d+$/.test(c.args[0]!) || Number(c.args[0]) < 1) return cx.list(scope, c, 'expected: keepalive N');
    cx.ok();
    cx.note(scope, c, 'an idle-connection pool, not a cap: nginx keeps up to N idle connections per worker and opens more on demand. '
      + 'Sluice keeps every pool connection alive (up to upstreams.*.connections per target, default 64, idle ones closed after 30 s), so nothing is emitted');
  },
  least_conn(c, _u, scope, cx) {
    if (c.args.length !== 0) return cx.list(scope, c, 'expected: least_conn');
    cx.ok();
    cx.note(scope, c, 'least_conn → least_outstanding: fewest requests in flight per weight, counting what the backend advertises in X-Backend-Load when it does');
    return 'least_outstanding';
  },
  random(c, _u, scope, cx) {
    if (c.args.length === 2 && c.args[0] === 'two' && c.args[1] === 'least_conn') {
      cx.ok();
      cx.note(scope, c, 'nginx picks two servers at random and takes the one with fewer active connections; Sluice p2c_ewma also samples two, '
        + 'and compares latency × (requests outstanding + 1), which is least_conn between the two whenever their latencies are equal');
      return 'p2c_ewma';
    }
    if (c.args.length === 0 || (c.args.length === 1 && c.args[0] === 'two')) {
      // `random` spreads by weight like round-robin does, only without the fixed order;
      // `random two` without a method means least_conn between the two (nginx's default).
      cx.ok();
      cx.note(scope, c, c.args.length === 0
        ? 'random: imported as (weighted) round-robin, which gives each server the same long-run share without the randomness'
        : 'random two: nginx compares the two by active connections (least_conn); imported as p2c_ewma, see random two least_conn');
      return c.args.length === 0 ? undefined : 'p2c_ewma';
    }
    return cx.list(scope, c, 'expected: random [two [least_conn]]');
  },
  ip_hash(c, _u, scope, cx) { cx.list(scope, c, 'Sluice has no sticky balancing; targets are imported with (weighted) round-robin'); },
  hash(c, _u, scope, cx) { cx.list(scope, c, 'Sluice has no hash balancing; targets are imported with (weighted) round-robin'); },
};

export const upstream: DirectiveHandler = {
  names: ['upstream'],
  levels: ['http'],
  handle(d, scope, cx) {
    const name = d.args[0];
    if (d.args.length !== 1 || name === undefined || d.block === undefined) return cx.listBlock(scope, d, 'expected: upstream NAME { … }');
    cx.upstreamBlocks.set(name, d);
    const u: ImportedUpstream = { name, targets: [], balancer: undefined, proxyHost: name, at: cx.at(d), block: true };
    cx.ok();
    let method: Balancer | undefined;
    for (const c of d.block) {
      const inner = INNER[c.name];
      if (inner === undefined) { cx.listBlock(scope, c, 'no Sluice equivalent inside upstream'); continue; }
      const m = inner(c, u, scope, cx);
      if (m !== undefined) method = m;
      else if (c.name === 'random') method = undefined;
    }
    u.balancer = method ?? (u.targets.some((t) => (t.weight ?? 1) !== 1) ? 'weighted_round_robin' : 'round_robin');
    if (u.targets.length > 0 && u.targets.every((t) => t.backup === true)) {
      for (const t of u.targets) delete t.backup;
      cx.item(scope, d, 'listed', 'every imported server is a backup (the others are down or not importable); they are imported as primaries', `upstream ${name}`);
    }
    if (u.targets.length === 0) {
      cx.item(scope, d, 'listed', 'no importable server: the upstream is left out, and the locations using it answer 501 not_migrated', `upstream ${name}`);
      return;
    }
    cx.upstreams.set(name, u);
  },
};

/**
 * weight, backup, max_fails and fail_timeout onto the target; false when the value is not
 * one nginx would accept (the caller reports it).
 */
function serverParam(t: ImportedTarget, name: string, value: string): boolean {
  switch (name) {
    case 'weight':
      if (!/^[1-9]\d*$/.test(value)) return false;
      t.weight = Number(value);
      return true;
    case 'backup':
      if (value !== '') return false;
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
