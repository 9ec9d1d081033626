import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../config/load.js';
import { MemoryStore } from './memory-store.js';
import type { LimitReqCheck } from './types.js';

// nginx's limit_req arithmetic on the memory store, on an injected clock, with exact
// values: excess in milli-requests, delays in ms, and which zones get charged.

const zone = (name: string, rateMilli: number, burst: number, delay: number, key = 'k'): LimitReqCheck =>
  ({ zone: name, key, rateMilli, burstMilli: burst * 1000, delayMilli: delay * 1000 });

function clock(): { now: number; store: MemoryStore } {
  const c = { now: 1_000_000, store: undefined as unknown as MemoryStore };
  c.store = new MemoryStore(() => c.now);
  return c;
}

describe('limit_req arithmetic (memory store, injected clock)', () => {
  it('a new key starts at excess 0; each request adds 1000; over burst refuses without charging', () => {
    const c = clock();
    const z = zone('z', 10_000, 2, 2);
    assert.deepEqual(c.store.limitReqSync([z]), { passed: true, zone: -1, excess: 0, delayMs: 0, at: c.now });
    assert.equal(c.store.limitReqSync([z]).passed, true);
    const third = c.store.limitReqSync([z]);
    assert.equal(third.passed, true);
    const refused = c.store.limitReqSync([z]);
    assert.deepEqual(refused, { passed: false, zone: 0, excess: 3000, delayMs: 0, at: c.now });
    // Refusals wrote nothing: 37 ms later the excess is 2000 - 370 + 1000.
    c.now += 37;
    assert.deepEqual(c.store.limitReqSync([z]), { passed: false, zone: 0, excess: 2630, delayMs: 0, at: c.now });
    c.now += 63;
    // 2000 - 1000 + 1000 = 2000 = burst: passes (nginx refuses only excess > burst).
    assert.equal(c.store.limitReqSync([z]).passed, true);
  });

  it('burst 0: a fresh key passes once, then exactly one request per 1/rate', () => {
    const c = clock();
    const z = zone('z', 2000, 0, 0);
    assert.equal(c.store.limitReqSync([z]).passed, true);
    c.now += 499;
    assert.deepEqual(c.store.limitReqSync([z]), { passed: false, zone: 0, excess: 2, delayMs: 0, at: c.now });
    c.now += 1;
    assert.deepEqual(c.store.limitReqSync([z]), { passed: true, zone: -1, excess: 0, delayMs: 0, at: c.now });
  });

  it('drain truncates like nginx: rate * ms / 1000 in integers (100r/m = 1666 milli/s)', () => {
    const c = clock();
    const cfg = parseConfig(`
plans: { p: { rate: 1 } }
upstreams: { u: { targets: ["http://127.0.0.1:1"] } }
limit_req_zones: { m: { key: client, rate: 100r/m } }
routes: [{ prefix: /, upstream: u, public: true, limit_req: [{ zone: m, burst: 5 }] }]
`);
    const rate = cfg.limit_req_zones.get('m')!.rate_milli;
    assert.equal(rate, 1666);
    const z = zone('m', rate, 5, 0);
    c.store.limitReqSync([z]);
    c.store.limitReqSync([z]); // excess 1000
    c.now += 7; // drains floor(1666 * 7 / 1000) = 11
    const r = c.store.limitReqSync([z]);
    assert.equal(r.excess, 1989);
    // delay = (excess - delay) * 1000 / rate, truncated: 1989000 / 1666 = 1193.8
    assert.equal(r.delayMs, 1193);
  });

  it('delay=N: up to N excess at once, beyond it delayed by (excess - N*1000) * 1000 / rate ms', () => {
    const c = clock();
    const z = zone('z', 5000, 4, 2);
    const delays = Array.from({ length: 6 }, () => c.store.limitReqSync([z]));
    assert.deepEqual(delays.map((d) => d.passed), [true, true, true, true, true, false]);
    assert.deepEqual(delays.map((d) => d.delayMs), [0, 0, 0, 200, 400, 0]);
    assert.deepEqual(delays.map((d) => d.excess), [0, 0, 0, 3000, 4000, 5000]);
  });

  it('nodelay is delay = burst: nothing passing is delayed', () => {
    const c = clock();
    const z = zone('z', 1000, 3, 3);
    const r = Array.from({ length: 5 }, () => c.store.limitReqSync([z]));
    assert.deepEqual(r.map((d) => [d.passed, d.delayMs]), [[true, 0], [true, 0], [true, 0], [true, 0], [false, 0]]);
  });

  it('several zones: a refusal by a later zone charges none of the earlier ones', () => {
    const c = clock();
    const a = zone('a', 10_000, 3, 3, 'key-1');
    const t = zone('t', 2000, 1, 1, 'tenant');
    assert.equal(c.store.limitReqSync([a, t]).passed, true); // a 0, t 0
    assert.equal(c.store.limitReqSync([zone('a', 10_000, 3, 3, 'key-2'), t]).passed, true); // t 1000
    const refused = c.store.limitReqSync([a, t]);
    assert.deepEqual(refused, { passed: false, zone: 1, excess: 2000, delayMs: 0, at: c.now });
    assert.equal(c.store.limitReqSync([a, t]).passed, false);
    // `a` was charged once only: 1000, 2000, 3000 pass, then 4000 refused.
    const alone = Array.from({ length: 4 }, () => c.store.limitReqSync([a]));
    assert.deepEqual(alone.map((d) => d.passed), [true, true, true, false]);
    assert.equal(alone[3]!.excess, 4000);
  });

  it('several zones: all are charged when all pass, and the longest delay wins', () => {
    const c = clock();
    const slow = zone('slow', 1000, 5, 0);
    const fast = zone('fast', 10_000, 5, 0);
    c.store.limitReqSync([fast, slow]);
    const r = c.store.limitReqSync([fast, slow]);
    // fast: 1000 -> 100 ms; slow: 1000 -> 1000 ms.
    assert.deepEqual(r, { passed: true, zone: 1, excess: 1000, delayMs: 1000, at: c.now });
    c.now += 100;
    const r2 = c.store.limitReqSync([fast]);
    assert.equal(r2.excess, 1000, 'fast was charged by the two-zone requests: 1000 - 1000 + 1000');
  });

  it('a clock step back keeps `last` (ms clamps to 0); far back counts as 1 ms', () => {
    const c = clock();
    // delay 0, so every pass reports its excess (as the delaying zone's).
    const z = zone('z', 1000, 10, 0);
    c.store.limitReqSync([z]);
    c.now -= 500;
    assert.equal(c.store.limitReqSync([z]).excess, 1000);
    c.now += 500; // back at the original last: still 0 ms since it
    assert.equal(c.store.limitReqSync([z]).excess, 2000);
    c.now -= 120_000;
    assert.equal(c.store.limitReqSync([z]).excess, 2999, '2000 - floor(1000 * 1 / 1000) ... = 2000 - 1 + 1000');
  });

  it('forgets drained keys, which then count as new', () => {
    const c = clock();
    const z = zone('z', 1000, 10, 10);
    for (let i = 0; i < 3; i++) c.store.limitReqSync([{ ...z, key: `k${i}` }]);
    assert.equal(c.store.trackedReqKeys(), 3);
    c.now += 120_000;
    c.store.limitReqSync([{ ...z, key: 'other' }]);
    assert.equal(c.store.trackedReqKeys(), 1);
  });
});

describe('limit_req config', () => {
  const base = `
plans: { p: { rate: 1 } }
upstreams: { u: { targets: ["http://127.0.0.1:1"] } }
`;
  it('reads zones and rules with nginx defaults', () => {
    const cfg = parseConfig(`${base}
limit_req_zones:
  one: { key: "header:X-API-Key", rate: 10r/s, size: 10m }
  two: { kind: nginx_limit_req, key: customer, rate: 30r/m }
limit_conn_zones:
  addr: { key: client }
routes:
  - { prefix: /, upstream: u, limit_req: [{ zone: one, burst: 20, nodelay: true }, { zone: two, delay: 3, burst: 5 }], limit_conn: [{ zone: addr, max: 10 }] }
`);
    assert.deepEqual(cfg.limit_req_zones.get('one'), { name: 'one', key: { source: 'header', header: 'x-api-key' }, rate: '10r/s', rate_milli: 10_000, size: '10m' });
    assert.equal(cfg.limit_req_zones.get('two')!.rate_milli, 500);
    const r = cfg.routes[0]!;
    assert.deepEqual(r.limit_req, [{ zone: 'one', burst: 20, delay: 20, nodelay: true }, { zone: 'two', burst: 5, delay: 3, nodelay: false }]);
    assert.equal(r.limit_req_status, 503);
    assert.deepEqual(r.limit_conn, [{ zone: 'addr', max: 10 }]);
    assert.equal(r.limit_conn_status, 503);
  });

  it('names every mistake by its field path', () => {
    assert.throws(() => parseConfig(`${base}
limit_req_zones:
  one: { key: "cookie:x", rate: 10r/h }
  cust: { key: customer, rate: 1r/s }
routes:
  - { prefix: /, upstream: u, public: true, limit_req_status: 302, limit_req: [{ zone: nope }, { zone: cust }, { zone: cust, burst: 1, nodelay: true, delay: 1 }] }
`), (err: Error) => {
      for (const want of [
        'limit_req_zones.one.key: must be client, customer or header:<Name>',
        'limit_req_zones.one.rate: must look like 10r/s or 30r/m',
        'routes[0].limit_req[0].zone: unknown limit_req zone "nope"',
        'routes[0].limit_req[1].zone: zone "cust" is keyed by customer, which a public route never has',
        'routes[0].limit_req[2].zone: zone "cust" is already limited on this route',
        'routes[0].limit_req[2]: give either nodelay or delay, not both',
        'routes[0].limit_req_status: must be >= 400',
      ]) assert.ok(err.message.includes(want), `missing "${want}" in:\n${err.message}`);
      return true;
    });
  });
});
