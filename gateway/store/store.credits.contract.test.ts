import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startRedis, startRedisCluster } from '../../test/harness/redis.js';
import { createRedisClient, type RedisClient } from '../../common/redis-client.js';
import { storeConfigOf } from '../config/load.js';
import type { StoreConfig } from '../config/types.js';
import { DAY_MS, periodsAt } from './calendar.js';
import { keySchema } from './key-schema.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { LimitPolicy, Settlement, Store } from './types.js';

// The credits half of the store contract: costs in admit and take, settlement (settle.lua
// and its memory mirror), daily usage, quota-threshold marks and idempotency records. One
// suite, run unchanged on the memory store (injected clock) and on real Redis, standalone
// and a 3+3 Cluster (every key of one call shares a slot, or the Cluster refuses it).

function policy(p: Partial<LimitPolicy>): LimitPolicy {
  return { rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 0, ...p };
}

/** So slow that a round trip refills nothing visible. */
const FROZEN = 0.001;

interface Subject { readonly store: Store; now(): number; advance(ms: number): Promise<void> }

let seq = 0;
const uniq = (label: string): string => `${label}-${process.pid}-${++seq}-${randomBytes(3).toString('hex')}`;

/** The day and month a settlement of an admission made now refers to. */
function periods(now: number): Pick<Settlement, 'day' | 'month'> {
  const p = periodsAt(now);
  return { day: p.day, month: p.month };
}

function suite(name: string, make: () => Promise<Subject>): void {
  describe(`Store credits contract: ${name}`, () => {
    let s: Subject;
    before(async () => { s = await make(); });

    it('admit takes `cost` units from the bucket and both quotas; a refusal for cost takes none', async () => {
      const subject = uniq('cost');
      const p = policy({ rate: FROZEN, burst: 10, quotaDay: 100, quotaMonth: 1000 });
      const a = await s.store.admit(subject, p, 'l1', 60_000, 7);
      assert.deepEqual([a.allowed, a.remaining, a.dayUsed, a.monthUsed], [true, 3, 7, 7]);
      const b = await s.store.admit(subject, p, 'l2', 60_000, 4);
      assert.deepEqual([b.allowed, b.reason, b.remaining, b.dayUsed], [false, 'rate_limited', 3, 7]);
      const c = await s.store.admit(subject, p, 'l3', 60_000, 3);
      assert.deepEqual([c.allowed, c.remaining, c.dayUsed], [true, 0, 10]);
      const q = uniq('cost-q');
      const pq = policy({ quotaDay: 10 });
      assert.equal((await s.store.admit(q, pq, 'l', 60_000, 8)).allowed, true);
      const over = await s.store.admit(q, pq, 'l', 60_000, 3);
      assert.deepEqual([over.allowed, over.reason, over.dayUsed], [false, 'quota_exceeded', 8]);
      assert.equal((await s.store.admit(q, pq, 'l', 60_000, 2)).allowed, true);
    });

    it('a lease batch is at least the request\'s cost', async () => {
      const subject = uniq('take');
      const p = policy({ rate: FROZEN, burst: 1000 });
      const g = await s.store.take(subject, p, 50, 5);
      assert.equal(g.taken, 50);
      // Near the end, a tenth of what is left is less than the cost: the cost alone is taken.
      const t = uniq('take-low');
      await s.store.admit(t, p, 'l', 60_000, 990);
      const low = await s.store.take(t, p, 50, 5);
      assert.deepEqual([low.decision.allowed, low.taken, low.decision.remaining], [true, 5, 5]);
    });

    it('settle charges more even past the limits (the work is done), and admit then refuses until it refills', async () => {
      const subject = uniq('settle-more');
      const p = policy({ rate: FROZEN, burst: 10, quotaDay: 20, quotaMonth: 100 });
      const now = s.now();
      await s.store.admit(subject, p, 'l', 60_000, 4);
      const r = await s.store.settle(subject, p, { tokens: 9, quota: 18, ...periods(now), floor: 1 });
      assert.deepEqual([r.lifted, r.dayUsed, r.monthUsed], [false, 22, 22]);
      assert.equal(r.day, periodsAt(now).day);
      const u = await s.store.usage(subject);
      assert.ok(u.tokens > -3.01 && u.tokens < -2.99, `tokens ${u.tokens}`);
      // The bucket is in debt: remaining reports it (RateLimit headers show 0).
      const d = await s.store.admit(subject, p, 'l', 60_000, 1);
      assert.deepEqual([d.allowed, d.reason, d.remaining], [false, 'quota_exceeded', -3]);
    });

    it('settle gives back: never past burst, never below zero, only in the admission\'s periods; lifted where a refusal could stand', async () => {
      const subject = uniq('settle-back');
      const p = policy({ rate: FROZEN, burst: 10, quotaDay: 10 });
      const now = s.now();
      await s.store.admit(subject, p, 'l', 60_000, 6);
      // 4 tokens left, 4 quota units left: a request of 5 (the floor) would be refused, so a give-back lifts it.
      const r = await s.store.settle(subject, p, { tokens: -3, quota: -3, ...periods(now), floor: 5 });
      assert.deepEqual([r.lifted, r.dayUsed], [true, 3]);
      assert.ok(Math.abs((await s.store.usage(subject)).tokens - 7) < 0.01);
      // Plenty left now: a give-back lifts nothing, and the bucket stops at burst, the counters at zero.
      const r2 = await s.store.settle(subject, p, { tokens: -50, quota: -50, ...periods(now), floor: 5 });
      assert.deepEqual([r2.lifted, r2.dayUsed], [false, 0]);
      assert.ok(Math.abs((await s.store.usage(subject)).tokens - 10) < 0.01);
      // A refund of another day's units does not touch today's count.
      await s.store.admit(subject, p, 'l', 60_000, 2);
      const yesterday = { day: periodsAt(now).day - 1, month: periodsAt(now - DAY_MS * 40).month };
      const r3 = await s.store.settle(subject, p, { tokens: 0, quota: -2, ...yesterday, floor: 1 });
      assert.equal(r3.dayUsed, 2);
    });

    it('a refund of quota only leaves the tokens spent', async () => {
      const subject = uniq('refund');
      const p = policy({ rate: FROZEN, burst: 10, quotaDay: 5 });
      const now = s.now();
      await s.store.admit(subject, p, 'l', 60_000, 5);
      const r = await s.store.settle(subject, p, { tokens: 0, quota: -5, ...periods(now), floor: 1 });
      assert.deepEqual([r.lifted, r.dayUsed], [true, 0]);
      const u = await s.store.usage(subject);
      assert.ok(u.tokens < 5.01, `tokens ${u.tokens}`);
    });

    it('daily usage adds up per customer and day, and lists by day then customer', async () => {
      const today = Math.floor(s.now() / DAY_MS);
      const a = uniq('use-a');
      const b = uniq('use-b');
      await s.store.addUsage([{ customer: a, day: today, counts: { requests: 2, units: 9, 'class:image': 2 } }, { customer: b, day: today - 1, counts: { requests: 1 } }], 400);
      await s.store.addUsage([{ customer: a, day: today, counts: { requests: 1, units: 3, refunded: 1 } }], 400);
      const mine = await s.store.readUsage(a, today - 5, today);
      assert.deepEqual(mine, [{ customer: a, day: today, counts: { requests: 3, units: 12, 'class:image': 2, refunded: 1 } }]);
      const all = (await s.store.readUsage(undefined, today - 1, today)).filter((r) => r.customer === a || r.customer === b);
      assert.deepEqual(all.map((r) => [r.customer, r.day]), [[b, today - 1], [a, today]]);
      assert.deepEqual(await s.store.readUsage(a, today + 1, today + 3), []);
    });

    it('a quota threshold is marked once per period, whoever asks', async () => {
      const subject = uniq('mark');
      const marks = await Promise.all(Array.from({ length: 8 }, () => s.store.markThreshold(subject, 'd2026-12-01', 80, 60_000)));
      assert.deepEqual(marks.filter(Boolean).length, 1);
      assert.equal(await s.store.markThreshold(subject, 'd2026-12-01', 100, 60_000), true);
      assert.equal(await s.store.markThreshold(subject, 'd2026-12-02', 80, 60_000), true);
    });

    it('idempotency: one claim, then running, mismatch, done with the kept response; only the claim holder finishes or gives up', async () => {
      const customer = uniq('idem');
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k1', 'fp', 't1', 60_000), { kind: 'new' });
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k1', 'fp', 't2', 60_000), { kind: 'running' });
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k1', 'other', 't2', 60_000), { kind: 'mismatch' });
      // Another customer's key of the same text is another key.
      assert.deepEqual(await s.store.idempotencyBegin(`${customer}-b`, 'k1', 'fp', 't3', 60_000), { kind: 'new' });
      const body = Buffer.from([0, 255, 1, 254, 0x7b, 0x22]);
      await s.store.idempotencyFinish(customer, 'k1', 'not-the-token', { status: 500, headers: [], body }, 60_000);
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k1', 'fp', 't2', 60_000), { kind: 'running' }, 'a stranger cannot finish it');
      await s.store.idempotencyFinish(customer, 'k1', 't1', { status: 201, headers: ['content-type', 'application/octet-stream'], body }, 60_000);
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k1', 'fp', 't2', 60_000),
        { kind: 'done', response: { status: 201, headers: ['content-type', 'application/octet-stream'], body } });
      // A response kept without its body (too large) still names its result.
      await s.store.idempotencyBegin(customer, 'k2', 'fp', 't1', 60_000);
      await s.store.idempotencyFinish(customer, 'k2', 't1', { status: 200, headers: ['content-location', '/v1/results/x'], body: undefined }, 60_000);
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k2', 'fp', 't2', 60_000),
        { kind: 'done', response: { status: 200, headers: ['content-location', '/v1/results/x'], body: undefined } });
      // Giving up: only the holder can, and then the key is new again.
      await s.store.idempotencyBegin(customer, 'k3', 'fp', 't1', 60_000);
      await s.store.idempotencyAbandon(customer, 'k3', 'nope');
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k3', 'fp', 't2', 60_000), { kind: 'running' });
      await s.store.idempotencyAbandon(customer, 'k3', 't1');
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k3', 'fp', 't4', 60_000), { kind: 'new' });
    });

    it('a kept response lives ttl, then the key is new again', async () => {
      const customer = uniq('idem-ttl');
      await s.store.idempotencyBegin(customer, 'k', 'fp', 't1', 60_000);
      await s.store.idempotencyFinish(customer, 'k', 't1', { status: 200, headers: [], body: Buffer.from('x') }, 50);
      assert.equal((await s.store.idempotencyBegin(customer, 'k', 'fp', 't2', 60_000)).kind, 'done');
      await s.advance(100);
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k', 'fp', 't3', 60_000), { kind: 'new' });
    });

    it('an idempotency claim whose holder died runs out with its lock', async () => {
      const customer = uniq('idem-lock');
      await s.store.idempotencyBegin(customer, 'k', 'fp', 't1', 40);
      await s.advance(80);
      assert.deepEqual(await s.store.idempotencyBegin(customer, 'k', 'fp', 't2', 40), { kind: 'new' });
    });
  });
}

suite('memory', async () => {
  let clock = Date.now();
  return { store: new MemoryStore(() => clock), now: () => clock, advance: async (ms) => { clock += ms; } };
});

const stops: (() => Promise<void>)[] = [];
const stores: RedisStore[] = [];
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all(stops.map((stop) => stop()));
});

const prefix = `ct:${process.pid}:${randomBytes(3).toString('hex')}:`;
async function redisSubject(cfg: Partial<StoreConfig>): Promise<Subject> {
  const store = new RedisStore({ ...storeConfigOf({ kind: 'redis', url: 'redis://unused', timeout_ms: 2000, prefix }), url: undefined, ...cfg });
  await store.ready(5000);
  stores.push(store);
  return { store, now: Date.now, advance: (ms) => new Promise((r) => setTimeout(r, ms)) };
}

suite('redis standalone', async () => {
  const r = await startRedis();
  stops.push(() => r.stop());
  return redisSubject({ url: r.url });
});

suite('redis cluster 3+3', async () => {
  const r = await startRedisCluster();
  stops.push(() => r.stop());
  return redisSubject({ mode: 'cluster', nodes: r.nodes });
});

describe('the credits keys in Redis (lua-compat/README.md)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let raw: RedisClient;
  let store: RedisStore;
  before(async () => {
    redis = await startRedis();
    store = (await redisSubject({ url: redis.url })).store as RedisStore;
    raw = createRedisClient(storeConfigOf({ kind: 'redis', url: redis.url }), {});
  });
  after(async () => {
    raw?.disconnect();
    await redis?.stop();
  });

  it('usage rows live until retention_days after their day; the day index with them', async () => {
    const k = keySchema(prefix);
    const day = Math.floor(Date.now() / DAY_MS);
    await store.addUsage([{ customer: 'acme', day, counts: { requests: 1 } }], 400);
    const date = new Date(day * DAY_MS).toISOString().slice(0, 10);
    const expireAt = Number(await raw.call('PEXPIRETIME', k.usage('acme', date)));
    assert.equal(expireAt, (day + 401) * DAY_MS);
    assert.equal(Number(await raw.call('PEXPIRETIME', k.usageIndex(date))), (day + 401) * DAY_MS);
    assert.deepEqual(await raw.smembers(k.usageIndex(date)), ['acme']);
    assert.deepEqual(await raw.hgetall(k.usage('acme', date)), { requests: '1' });
  });
});
