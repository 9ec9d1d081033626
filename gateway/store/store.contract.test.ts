import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startRedis, startRedisCluster, startRedisSentinel, startRedisTls } from '../../test/harness/redis.js';
import { makeTestPki } from '../../test/harness/tls-pki.js';
import type { StoreConfig } from '../config/types.js';
import { storeConfigOf } from '../config/load.js';
import type { Cluster } from 'ioredis';
import { clusterSlot, keySchema } from './key-schema.js';
import { createRedisClient, type RedisClient } from '../../common/redis-client.js';
import { periodsAt } from './calendar.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import type { Decision, Invalidation, KeyRecord, LimitConnCheck, LimitPolicy, LimitReqCheck, LimitReqResult, Store } from './types.js';

// One contract, two stores. Every `it` in contractSuite runs unchanged against the
// MemoryStore (on an injected clock) and the RedisStore (on a real redis-server), with
// the same exact expectations, so the stores cannot drift apart. Where time must pass,
// the memory clock is moved; Redis decides on its own TIME, so there the suite waits
// for real, and only for a few tens of milliseconds.

const DAY_MS = 86_400_000;
const LEASE_TTL = 60_000;

/** A policy with only the given limits; 0 everywhere else means "no such limit". */
function policy(p: Partial<LimitPolicy>): LimitPolicy {
  return { rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 0, ...p };
}

/** Rates so slow that the milliseconds a Redis round trip takes refill nothing visible. */
const FROZEN = 0.001;

interface Subject {
  readonly store: Store;
  /** Lets `ms` pass for the store: moves the memory clock, or waits for real on Redis. */
  advance(ms: number): Promise<void>;
  /** The store's idea of now, to check the period resets it reports. */
  now(): number;
  close(): Promise<void>;
}

interface StoreKind {
  readonly name: string;
  make(): Promise<Subject>;
}

let seq = 0;
const uniq = (label: string): string => `${label}-${process.pid}-${++seq}-${randomBytes(3).toString('hex')}`;

/** Concurrent calls: ioredis pipelines them into one round trip, so Redis runs them back to back. */
function admitAll(store: Store, subject: string, p: LimitPolicy, n: number, ttl = LEASE_TTL): Promise<Decision[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => store.admit(subject, p, `${subject}:l${i}`, ttl)));
}

function contractSuite(kind: StoreKind): void {
  /** A key record as both stores answer it: every field present, the absent ones undefined. */
function keyRecord(r: Pick<KeyRecord, 'digest' | 'customer' | 'plan' | 'label' | 'createdAt'> & Partial<KeyRecord>): KeyRecord {
  return {
    expiresAt: undefined, rotatedAt: undefined, graceUntil: undefined, replacedBy: undefined, allow: undefined, lastUsedAt: undefined, ...r,
  };
}

describe(`Store contract: ${kind.name}`, () => {
    let s: Subject;
    before(async () => { s = await kind.make(); });
    after(async () => { await s.close(); });

    it('token bucket: the whole burst is admitted at once, then denied with a retry time', async () => {
      const subject = uniq('tb');
      const p = policy({ rate: 20, burst: 5 });
      const ds = await admitAll(s.store, subject, p, 7);
      assert.deepEqual(ds.map((d) => d.allowed), [true, true, true, true, true, false, false]);
      assert.deepEqual(ds.slice(0, 5).map((d) => d.remaining), [4, 3, 2, 1, 0]);
      for (const d of ds.slice(5)) {
        assert.equal(d.reason, 'rate_limited');
        assert.equal(d.remaining, 0);
        // One token at 20/s takes 50 ms; a few ms may already have refilled on Redis.
        assert.ok(d.retryAfterMs > 0 && d.retryAfterMs <= 50, `retryAfterMs ${d.retryAfterMs}`);
        assert.ok(d.fullInMs > 200 && d.fullInMs <= 250, `fullInMs ${d.fullInMs}`);
      }
      assert.equal(ds[0]!.fullInMs, 50, 'one token short of a full bucket of 5 at 20/s');
    });

    it('token bucket: refills over time, one token per 1/rate, never beyond burst', async () => {
      const subject = uniq('refill');
      // 5/s: a token every 200 ms, so on a real clock the two admissions after the wait
      // have 198 ms of event-loop lag to spare before a second token would be there too
      // (at 100/s, 8 ms of lag on a busy host let both through).
      const p = policy({ rate: 5, burst: 3 });
      const drained = await admitAll(s.store, subject, p, 4);
      const denied = drained[3]!;
      assert.equal(denied.allowed, false);
      // retryAfterMs is a promise: wait that long (plus clock-granularity slack) and one token is there.
      await s.advance(denied.retryAfterMs + 2);
      const [one, none] = await admitAll(s.store, subject, p, 2);
      assert.equal(one!.allowed, true, 'a token is back after retryAfterMs');
      assert.equal(none!.allowed, false, 'but only one');
      // Far longer than 3 tokens take: the bucket holds burst, not more.
      await s.advance(700);
      const again = await admitAll(s.store, subject, p, 5);
      assert.deepEqual(again.map((d) => d.allowed), [true, true, true, false, false]);
    });

    it('a denied request consumes neither tokens nor quota nor a lease', async () => {
      const byBucket = uniq('deny-tb');
      const p1 = policy({ rate: FROZEN, burst: 2, quotaDay: 100, quotaMonth: 100 });
      const d1 = await admitAll(s.store, byBucket, p1, 6);
      assert.equal(d1.filter((d) => d.allowed).length, 2);
      let u = await s.store.usage(byBucket);
      assert.equal(u.dayUsed, 2);
      assert.equal(u.monthUsed, 2);
      assert.ok(u.tokens >= 0 && u.tokens < 0.01, `tokens ${u.tokens}`);
      assert.deepEqual(d1.slice(2).map((d) => [d.reason, d.dayUsed, d.monthUsed]), Array(4).fill(['rate_limited', 2, 2]));

      const byQuota = uniq('deny-q');
      const p2 = policy({ rate: FROZEN, burst: 10, quotaDay: 2 });
      const d2 = await admitAll(s.store, byQuota, p2, 5);
      assert.deepEqual(d2.map((d) => d.reason), [undefined, undefined, 'quota_exceeded', 'quota_exceeded', 'quota_exceeded']);
      u = await s.store.usage(byQuota);
      assert.equal(u.dayUsed, 2);
      assert.ok(Math.abs(u.tokens - 8) < 0.01, `quota denials left the bucket alone: tokens ${u.tokens}`);
      assert.equal(d2[4]!.remaining, 8, 'a quota denial still reports the tokens that are left');

      const byInflight = uniq('deny-if');
      const p3 = policy({ rate: FROZEN, burst: 10, quotaDay: 100, maxInflight: 1 });
      const d3 = await admitAll(s.store, byInflight, p3, 4);
      assert.deepEqual(d3.map((d) => d.reason), [undefined, 'concurrency_limited', 'concurrency_limited', 'concurrency_limited']);
      u = await s.store.usage(byInflight);
      assert.equal(u.dayUsed, 1);
      assert.equal(u.inflight, 1);
      assert.ok(Math.abs(u.tokens - 9) < 0.01, `tokens ${u.tokens}`);
      assert.deepEqual([d3[3]!.remaining, d3[3]!.dayUsed, d3[3]!.inflight], [9, 1, 1], 'the denial reports real state');
    });

    it('day quota: exactly quotaDay admitted, then quota_exceeded until the next UTC day', async () => {
      const subject = uniq('day');
      const ds = await admitAll(s.store, subject, policy({ quotaDay: 5 }), 9);
      assert.deepEqual(ds.map((d) => d.allowed), [true, true, true, true, true, false, false, false, false]);
      assert.deepEqual(ds.slice(0, 5).map((d) => d.dayUsed), [1, 2, 3, 4, 5]);
      const now = s.now();
      for (const d of ds.slice(5)) {
        assert.equal(d.reason, 'quota_exceeded');
        assert.equal(d.dayUsed, 5);
        assert.equal(d.retryAfterMs, d.dayResetMs, 'retry when the day resets');
        assert.ok(Math.abs(d.dayResetMs - periodsAt(now).dayResetMs) < 2000, `dayResetMs ${d.dayResetMs}`);
      }
      assert.equal((await s.store.usage(subject)).dayUsed, 5);
    });

    it('month quota: exactly quotaMonth admitted; it binds even when the day quota does not', async () => {
      const subject = uniq('month');
      const ds = await admitAll(s.store, subject, policy({ quotaDay: 10, quotaMonth: 3 }), 5);
      assert.deepEqual(ds.map((d) => d.allowed), [true, true, true, false, false]);
      const now = s.now();
      const monthReset = periodsAt(now).monthEndMs - now;
      for (const d of ds.slice(3)) {
        assert.equal(d.reason, 'quota_exceeded');
        assert.equal(d.monthUsed, 3);
        assert.equal(d.retryAfterMs, d.monthResetMs, 'retry when the month resets');
        assert.ok(Math.abs(d.monthResetMs - monthReset) < 2000, `monthResetMs ${d.monthResetMs} vs ${monthReset}`);
      }
      const u = await s.store.usage(subject);
      assert.deepEqual([u.dayUsed, u.monthUsed], [3, 3]);
    });

    it('in-flight: at most maxInflight leases; release frees exactly one slot', async () => {
      const subject = uniq('inflight');
      const p = policy({ maxInflight: 2 });
      const admit = (lease: string): Promise<Decision> => s.store.admit(subject, p, lease, LEASE_TTL);
      const [a, b, c] = await Promise.all([admit('a'), admit('b'), admit('c')]);
      assert.deepEqual([a!.allowed, b!.allowed, c!.allowed], [true, true, false]);
      assert.deepEqual([a!.inflight, b!.inflight], [1, 2]);
      assert.equal(c!.reason, 'concurrency_limited');
      assert.equal(c!.inflight, 2);
      assert.ok(c!.retryAfterMs > 0);
      assert.equal((await s.store.usage(subject)).inflight, 2, 'the denied request took no lease');

      await s.store.release(subject, 'unknown-lease');
      assert.equal((await admit('d')).allowed, false, 'releasing a lease nobody holds frees nothing');

      await s.store.release(subject, 'a');
      const [e, f] = await Promise.all([admit('e'), admit('f')]);
      assert.deepEqual([e!.allowed, f!.allowed], [true, false]);
      assert.equal(e!.inflight, 2);

      await Promise.all(['b', 'e'].map((l) => s.store.release(subject, l)));
      assert.equal((await s.store.usage(subject)).inflight, 0);
    });

    it('in-flight: a lease expires after its ttl (a crashed gateway cannot hold a slot forever)', async () => {
      const subject = uniq('lease');
      const p = policy({ maxInflight: 1 });
      assert.equal((await s.store.admit(subject, p, 'crashed', 40)).allowed, true);
      assert.equal((await s.store.admit(subject, p, 'next', 40)).allowed, false);
      await s.advance(60);
      assert.equal((await s.store.usage(subject)).inflight, 0, 'expired leases do not count');
      const d = await s.store.admit(subject, p, 'next', 40);
      assert.equal(d.allowed, true);
      assert.equal(d.inflight, 1);
    });

    it('limits are checked in a fixed order: in-flight, then quotas, then the bucket', async () => {
      const subject = uniq('order');
      const p = policy({ rate: FROZEN, burst: 1, quotaDay: 1, maxInflight: 1 });
      assert.equal((await s.store.admit(subject, p, 'first', LEASE_TTL)).allowed, true);
      // Now all three limits are exhausted at once.
      assert.equal((await s.store.admit(subject, p, 'x', LEASE_TTL)).reason, 'concurrency_limited');
      await s.store.release(subject, 'first');
      assert.equal((await s.store.admit(subject, p, 'y', LEASE_TTL)).reason, 'quota_exceeded');
      assert.equal((await s.store.admit(subject, { ...p, quotaDay: 0 }, 'z', LEASE_TTL)).reason, 'rate_limited');
    });

    it('subjects are independent', async () => {
      const [one, two] = [uniq('iso1'), uniq('iso2')];
      const p = policy({ rate: FROZEN, burst: 1, quotaDay: 5 });
      assert.equal((await s.store.admit(one, p, 'l', LEASE_TTL)).allowed, true);
      assert.equal((await s.store.admit(one, p, 'l2', LEASE_TTL)).allowed, false);
      const d = await s.store.admit(two, p, 'l', LEASE_TTL);
      assert.equal(d.allowed, true);
      assert.equal(d.dayUsed, 1);
      assert.deepEqual(await s.store.usage(uniq('never-seen')), { dayUsed: 0, monthUsed: 0, inflight: 0, tokens: -1 });
    });

    it('key records: save, find, list (all and per customer), revoke', async () => {
      const c1 = uniq('cust');
      const c2 = uniq('cust');
      const k = (): string => randomBytes(32).toString('hex');
      const [d1, d2, d3] = [k(), k(), k()];
      await s.store.saveKey({ digest: d1, customer: c1, plan: 'pro', label: 'ci', createdAt: 1_700_000_000_000 });
      await s.store.saveKey({ digest: d2, customer: c1, plan: undefined, label: undefined, createdAt: 5 });
      await s.store.saveKey({ digest: d3, customer: c2, plan: 'free', label: 'other', createdAt: 6 });

      assert.deepEqual(await s.store.findKey(d1), keyRecord({ digest: d1, customer: c1, plan: 'pro', label: 'ci', createdAt: 1_700_000_000_000 }));
      assert.deepEqual(await s.store.findKey(d2), keyRecord({ digest: d2, customer: c1, plan: undefined, label: undefined, createdAt: 5 }));
      assert.equal(await s.store.findKey(k()), undefined);

      const digests = (rs: { digest: string }[]) => rs.map((r) => r.digest).sort();
      assert.deepEqual(digests(await s.store.listKeys(c1)), [d1, d2].sort());
      assert.deepEqual(digests(await s.store.listKeys(c2)), [d3]);
      const all = digests(await s.store.listKeys(undefined));
      for (const d of [d1, d2, d3]) assert.ok(all.includes(d));

      assert.equal(await s.store.revokeKey(d1), true);
      assert.equal(await s.store.revokeKey(d1), false, 'revoking twice reports that nothing was there');
      assert.equal(await s.store.findKey(d1), undefined);
      assert.deepEqual(digests(await s.store.listKeys(c1)), [d2]);
      assert.ok(!digests(await s.store.listKeys(undefined)).includes(d1));

      // A key saved again under another customer belongs to that customer only.
      await s.store.saveKey({ digest: d2, customer: c2, plan: 'free', label: undefined, createdAt: 7 });
      assert.deepEqual(digests(await s.store.listKeys(c1)), []);
      assert.deepEqual(digests(await s.store.listKeys(c2)), [d2, d3].sort());
    });

    it('key records keep their lifecycle (expiry, rotation, allowlist); last use only moves forward and never resurrects a key', async () => {
      const d = randomBytes(32).toString('hex');
      const gone = randomBytes(32).toString('hex');
      const full = keyRecord({
        digest: d, customer: uniq('cust'), plan: 'pro', label: 'ci', createdAt: 1, expiresAt: Date.now() + 86_400_000, rotatedAt: 2,
        graceUntil: Date.now() + 3_600_000, replacedBy: 'f'.repeat(64), allow: ['10.0.0.0/8', '2001:db8::/32'],
      });
      await s.store.saveKey(full);
      assert.deepEqual(await s.store.findKey(d), full);
      await s.store.touchKeys(new Map([[d, 1000], [gone, 1000]]));
      assert.equal((await s.store.findKey(d))?.lastUsedAt, 1000);
      assert.equal(await s.store.findKey(gone), undefined, 'touching a key that does not exist creates nothing');
      await s.store.touchKeys(new Map([[d, 500]]));
      assert.equal((await s.store.findKey(d))?.lastUsedAt, 1000, 'an older time from a slower gateway changes nothing');
      await s.store.saveKey({ ...full, label: 'renamed' });
      assert.deepEqual(await s.store.findKey(d), { ...full, label: 'renamed', lastUsedAt: 1000 }, 'a save keeps the last use');
    });

    it('customer records: save, find, overwrite', async () => {
      const id = uniq('cust');
      assert.equal(await s.store.findCustomer(id), undefined);
      await s.store.saveCustomer({ id, plan: 'pro', overrides: { rate: 7.5, quota_day: 100 } });
      assert.deepEqual(await s.store.findCustomer(id), { id, plan: 'pro', overrides: { rate: 7.5, quota_day: 100 } });
      await s.store.saveCustomer({ id, plan: undefined, overrides: {} });
      assert.deepEqual(await s.store.findCustomer(id), { id, plan: undefined, overrides: {} });
    });

    // nginx limit_req. 1 milli-request per second drains nothing in the milliseconds a Redis
    // round trip takes, so the excess values are exact on both stores.
    const withoutAt = ({ at: _, ...r }: LimitReqResult): Omit<LimitReqResult, 'at'> => r;
    const reqZone = (zone: string, rateMilli: number, burst: number, delay: number, key = 'k'): LimitReqCheck =>
      ({ zone, key, rateMilli, burstMilli: burst * 1000, delayMilli: delay * 1000 });

    it('limit_req: excess per request, delay past delay=N, refusal over burst that charges nothing', async () => {
      const z = reqZone(uniq('lr'), 1, 2, 1);
      const rs = [];
      const before = s.now();
      for (let i = 0; i < 4; i++) rs.push(await s.store.limitReq([z]));
      const after = s.now();
      // `at` is when the store decided, on the clock it drains by (Redis TIME: this machine's; the memory store's own).
      for (const r of rs) assert.ok(r.at >= before && r.at <= after, `decided at ${r.at}, not within [${before}, ${after}]`);
      assert.deepEqual(rs.map(withoutAt), [
        { passed: true, zone: -1, excess: 0, delayMs: 0 },
        { passed: true, zone: -1, excess: 0, delayMs: 0 },
        { passed: true, zone: 0, excess: 2000, delayMs: 1_000_000 },
        { passed: false, zone: 0, excess: 3000, delayMs: 0 },
      ]);
      assert.deepEqual(withoutAt(await s.store.limitReq([z])), { passed: false, zone: 0, excess: 3000, delayMs: 0 }, 'a refusal wrote nothing');
      assert.equal((await s.store.limitReq([{ ...z, key: 'another' }])).passed, true, 'keys are independent');
    });

    it('limit_req: several zones are charged only when every one passes', async () => {
      // Keyed by different values: on a Cluster the two zones sit in different slots and
      // are decided in two halves (check all, then charge), with the same outcomes.
      const a = reqZone(uniq('lra'), 1, 3, 3, 'key');
      const t = reqZone(uniq('lrt'), 1, 0, 0, 'tenant');
      assert.notEqual(zoneSlot(a.key), zoneSlot(t.key), 'the zones must span slots for this test to cover that path');
      assert.equal((await s.store.limitReq([a, t])).passed, true);
      assert.deepEqual(withoutAt(await s.store.limitReq([a, t])), { passed: false, zone: 1, excess: 1000, delayMs: 0 });
      assert.deepEqual(withoutAt(await s.store.limitReq([a, t])), { passed: false, zone: 1, excess: 1000, delayMs: 0 });
      // `a` holds the first request only: 1000, 2000, 3000 pass, 4000 is refused.
      const alone = [];
      for (let i = 0; i < 4; i++) alone.push(await s.store.limitReq([a]));
      assert.deepEqual(alone.map((r) => r.passed), [true, true, true, false]);
      assert.equal(alone[3]!.excess, 4000);
    });

    it('limit_req and limit_conn: concurrent calls for keys in many slots all get decided', async () => {
      // Auto-pipelined together; on a Cluster each must still reach its own slot's master.
      const zone = uniq('lrm');
      const reqs = await Promise.all(Array.from({ length: 40 }, (_, i) => s.store.limitReq([reqZone(zone, 1, 5, 5, `many-${i}`)])));
      assert.deepEqual(reqs.filter((r) => !r.passed), []);
      const conns = await Promise.all(Array.from({ length: 40 }, (_, i) => s.store.limitConn([connZone(zone, 1, `many-${i}`)], `l${i}`, LEASE_TTL)));
      assert.deepEqual(conns.filter((r) => !r.passed), []);
    });

    it('limit_req: the bucket drains at rate (10r/s, burst 0: one request per 100 ms)', async () => {
      const z = reqZone(uniq('lrd'), 10_000, 0, 0);
      assert.equal((await s.store.limitReq([z])).passed, true);
      assert.equal((await s.store.limitReq([z])).passed, false);
      await s.advance(110);
      assert.deepEqual(withoutAt(await s.store.limitReq([z])), { passed: true, zone: -1, excess: 0, delayMs: 0 });
    });

    // nginx limit_conn: slots per zone key, taken in every zone of a request or in none.
    const connZone = (zone: string, max: number, key = 'k'): LimitConnCheck => ({ zone, key, max });

    it('limit_conn: at most max slots per key; a refusal takes none; release frees exactly one', async () => {
      const z = connZone(uniq('lc'), 2);
      assert.deepEqual(await s.store.limitConn([z], 'a', LEASE_TTL), { passed: true, zone: -1, inflight: 0 });
      assert.deepEqual(await s.store.limitConn([z], 'b', LEASE_TTL), { passed: true, zone: -1, inflight: 0 });
      assert.deepEqual(await s.store.limitConn([z], 'c', LEASE_TTL), { passed: false, zone: 0, inflight: 2 });
      assert.deepEqual(await s.store.limitConn([z], 'd', LEASE_TTL), { passed: false, zone: 0, inflight: 2 }, 'the refusal took no slot');
      assert.equal((await s.store.limitConn([{ ...z, key: 'other' }], 'e', LEASE_TTL)).passed, true, 'keys are independent');
      await s.store.releaseConn([z], 'c');
      assert.equal((await s.store.limitConn([z], 'f', LEASE_TTL)).passed, false, 'releasing a lease nobody holds frees nothing');
      await s.store.releaseConn([z], 'a');
      assert.equal((await s.store.limitConn([z], 'g', LEASE_TTL)).passed, true);
      assert.deepEqual(await s.store.limitConn([z], 'h', LEASE_TTL), { passed: false, zone: 0, inflight: 2 });
    });

    it('limit_conn: several zones are all taken or none; release gives back every one', async () => {
      const ip = connZone(uniq('lcip'), 3, '127.0.0.1');
      const key = connZone(uniq('lckey'), 1, 'api-key');
      assert.notEqual(zoneSlot(ip.key), zoneSlot(key.key), 'the zones must span slots for this test to cover that path');
      assert.equal((await s.store.limitConn([ip, key], 'a', LEASE_TTL)).passed, true);
      assert.deepEqual(await s.store.limitConn([ip, key], 'b', LEASE_TTL), { passed: false, zone: 1, inflight: 1 });
      // `ip` holds only `a`: two more fit, the third not (had `b` taken its slot, one fewer would).
      assert.deepEqual(
        [await s.store.limitConn([ip], 'c', LEASE_TTL), await s.store.limitConn([ip], 'd', LEASE_TTL), await s.store.limitConn([ip], 'e', LEASE_TTL)]
          .map((r) => r.passed), [true, true, false]);
      await s.store.releaseConn([ip, key], 'a');
      assert.equal((await s.store.limitConn([key], 'f', LEASE_TTL)).passed, true);
      assert.equal((await s.store.limitConn([ip], 'g', LEASE_TTL)).passed, true);
    });

    it('limit_conn: a lease expires after its ttl (a crashed edge cannot hold a slot forever)', async () => {
      const z = connZone(uniq('lcx'), 1);
      assert.equal((await s.store.limitConn([z], 'crashed', 40)).passed, true);
      assert.equal((await s.store.limitConn([z], 'next', 40)).passed, false);
      await s.advance(60);
      assert.equal((await s.store.limitConn([z], 'next', 40)).passed, true);
    });

    it('publish reaches every subscriber sharing the store, in order', async () => {
      const wanted: Invalidation[] = [{ kind: 'key', digest: randomBytes(32).toString('hex') }, { kind: 'customer', id: uniq('c') }];
      const same = (a: Invalidation, b: Invalidation): boolean => JSON.stringify(a) === JSON.stringify(b);
      // For Redis the listener is a second store on its own connections, as another gateway would be.
      const other = s.store.kind === 'memory' ? undefined : await kind.make();
      const listener = other?.store ?? s.store;
      const got: Invalidation[] = [];
      let timer: NodeJS.Timeout | undefined;
      try {
        const all = new Promise<void>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`only got ${JSON.stringify(got)}`)), 3000);
          void listener.subscribe((msg) => {
            // A (re)connecting subscriber also hears a "drop everything" message; only ours count.
            if (wanted.some((w) => same(w, msg))) got.push(msg);
            if (got.length === wanted.length) resolve();
          }).then(async () => { for (const w of wanted) await s.store.publish(w); }, reject);
        });
        await all;
      } finally {
        clearTimeout(timer);
        await other?.close();
      }
      assert.deepEqual(got, wanted, 'a revoke must not overtake the save it undoes');
    });
  });
}

/** The Cluster slot of a zone key's state: its hash tag is the hashed key value, whatever the zone. */
function zoneSlot(value: string): number {
  return clusterSlot(keySchema('').limitReq('z', value));
}

// ---------------------------------------------------------------------------------

/**
 * A Redis deployment the suite runs against, started on first use and once per file:
 * the store must keep the same contract whether its keys live on one server, behind
 * Sentinel, or spread over a Cluster's slots.
 */
interface Topology {
  readonly name: string;
  readonly cluster: boolean;
  start(): Promise<{ config: Partial<StoreConfig>; stop(): Promise<void> }>;
}

const topologies: Topology[] = [
  { name: 'standalone', cluster: false, async start() { const r = await startRedis(); return { config: { url: r.url }, stop: () => r.stop() }; } },
  { name: 'standalone over TLS, client certificates', cluster: false, async start() {
    const pki = await makeTestPki();
    const r = await startRedisTls(pki);
    return {
      config: { url: r.url, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, reject_unauthorized: true } },
      async stop() { await r.stop(); await pki.remove(); },
    };
  } },
  { name: 'sentinel', cluster: false, async start() {
    const r = await startRedisSentinel();
    return { config: { mode: 'sentinel', sentinels: r.sentinels, sentinel_name: r.name }, stop: () => r.stop() };
  } },
  { name: 'sentinel over TLS, client certificates', cluster: false, async start() {
    const pki = await makeTestPki();
    const r = await startRedisSentinel(pki);
    return {
      config: { mode: 'sentinel', sentinels: r.sentinels, sentinel_name: r.name, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, reject_unauthorized: true } },
      async stop() { await r.stop(); await pki.remove(); },
    };
  } },
  { name: 'cluster 3+3', cluster: true, async start() { const r = await startRedisCluster(); return { config: { mode: 'cluster', nodes: r.nodes }, stop: () => r.stop() }; } },
  { name: 'cluster 3+3 over TLS, client certificates', cluster: true, async start() {
    const pki = await makeTestPki();
    const r = await startRedisCluster(pki);
    return {
      config: { mode: 'cluster', nodes: r.nodes, tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, reject_unauthorized: true } },
      async stop() { await r.stop(); await pki.remove(); },
    };
  } },
];

const started = new Map<Topology, ReturnType<Topology['start']>>();
const redisStores: RedisStore[] = [];
const clients: RedisClient[] = [];

function storeConfig(topo: Topology, prefix: string): Promise<StoreConfig> {
  if (!started.has(topo)) started.set(topo, topo.start());
  return started.get(topo)!.then(({ config }) => ({ ...storeConfigOf({ kind: 'redis', url: 'redis://unused', timeout_ms: 1000, prefix }), url: undefined, ...config }));
}

async function redisStore(topo: Topology, prefix: string): Promise<RedisStore> {
  const store = new RedisStore(await storeConfig(topo, prefix));
  await store.ready(5000);
  redisStores.push(store);
  return store;
}

/** A plain client to look at the raw keys, through the same factory as the store (so it follows Cluster redirects). */
async function rawClient(topo: Topology): Promise<RedisClient> {
  const c = createRedisClient(await storeConfig(topo, ''), {});
  clients.push(c);
  return c;
}

after(async () => {
  await Promise.all(redisStores.map((s) => s.close()));
  for (const c of clients) c.disconnect();
  await Promise.all([...started.values()].map(async (p) => (await p).stop()));
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const memoryKind: StoreKind = {
  name: 'memory',
  async make() {
    let clock = Date.now();
    const store = new MemoryStore(() => clock);
    return {
      store,
      advance: async (ms) => { clock += ms; },
      now: () => clock,
      close: () => store.close(),
    };
  },
};

// All Redis subjects of one run share a prefix no other run uses, so the suite needs no cleanup between tests.
const runPrefix = `test:${process.pid}:${randomBytes(3).toString('hex')}:`;
const redisKind = (topo: Topology): StoreKind => ({
  name: `redis ${topo.name}`,
  async make() {
    const store = await redisStore(topo, runPrefix);
    return { store, advance: sleep, now: Date.now, close: () => store.close() };
  },
});

contractSuite(memoryKind);
for (const topo of topologies) contractSuite(redisKind(topo));

for (const topo of topologies) describe(`memory and Redis (${topo.name}) decide alike`, () => {
  it('the same scripted sequence of admits and releases gets the same decisions from both', async () => {
    const policies = [
      policy({ rate: FROZEN, burst: 3 }),
      policy({ rate: FROZEN, burst: 4, quotaDay: 6 }),
      policy({ rate: FROZEN, burst: 10, quotaDay: 50, quotaMonth: 8 }),
      policy({ rate: FROZEN, burst: 5, maxInflight: 2 }),
      policy({ quotaDay: 9, maxInflight: 1 }),
    ];
    // Each slot is one subject under one policy (a subject keeps its policy, as a customer does).
    const slots = [0, 1, 2].flatMap((sj) => policies.map((_, p) => ({ subject: `s${sj}:p${p}`, policy: policies[p]! })));
    // A fixed-seed LCG: the same script every run, mixed enough to hit every limit and both outcomes.
    let x = 12345;
    const rnd = (n: number): number => { x = (x * 1103515245 + 12345) % 2147483648; return Math.floor(x / 65536) % n; };
    type Op = { admit: boolean; slot: number; lease: string };
    const script: Op[] = [];
    for (let i = 0; i < 300; i++) {
      const slot = rnd(slots.length);
      // Releases name a lease of that slot that may or may not have been granted (or already released).
      script.push(rnd(3) === 0 ? { admit: false, slot, lease: `l${rnd(i + 1)}` } : { admit: true, slot, lease: `l${i}` });
    }

    const run = async (store: Store, ns: string): Promise<unknown[]> => {
      const out: unknown[] = [];
      for (const op of script) {
        const { subject, policy: p } = slots[op.slot]!;
        if (!op.admit) { await store.release(ns + subject, op.lease); continue; }
        const d = await store.admit(ns + subject, p, op.lease, LEASE_TTL);
        out.push([d.allowed, d.reason, d.remaining, d.dayUsed, d.monthUsed, d.inflight]);
      }
      for (const { subject } of slots) {
        const u = await store.usage(ns + subject);
        out.push([u.dayUsed, u.monthUsed, u.inflight, Math.floor(u.tokens)]);
      }
      return out;
    };
    const memory = await run(new MemoryStore(), 'm:');
    const viaRedis = await run(await redisStore(topo, `${runPrefix}diff:`), 'r:');
    assert.deepEqual(viaRedis, memory);
    const reasons = new Set(memory.slice(0, -slots.length).map((d) => (d as unknown[])[1]));
    assert.deepEqual([...reasons].sort(), ['concurrency_limited', 'quota_exceeded', 'rate_limited', undefined].sort(),
      'the script exercises every outcome');
  });
});

describe('memory store on its injected clock', () => {
  it('a token comes back at exactly retryAfterMs, not a millisecond earlier', async () => {
    let clock = 1_700_000_000_000;
    const store = new MemoryStore(() => clock);
    const p = policy({ rate: 3, burst: 2 });
    await admitAll(store, 's', p, 2);
    const denied = await store.admit('s', p, 'x', LEASE_TTL);
    assert.equal(denied.retryAfterMs, 334, '1 token at 3/s = 333.3 ms, rounded up');
    clock += 333;
    assert.equal((await store.admit('s', p, 'x', LEASE_TTL)).allowed, false);
    clock += 1;
    assert.equal((await store.admit('s', p, 'x', LEASE_TTL)).allowed, true);
  });

  it('forgets refilled buckets, past months and expired leases, so memory follows active subjects', async () => {
    let clock = Date.UTC(2026, 0, 31, 12);
    const store = new MemoryStore(() => clock);
    const policy = { rate: 10, burst: 10, quotaDay: 0, quotaMonth: 0, maxInflight: 5 };
    for (let i = 0; i < 100; i++) await store.admit(`idle-${i}`, policy, `l${i}`, 1000);
    assert.equal(store.trackedSubjects(), 100);
    clock += 2 * DAY_MS; // February: every bucket refilled, every lease expired, January's counters stale
    await store.admit('active', policy, 'l-active', 60_000);
    assert.equal(store.trackedSubjects(), 1, 'only the subject still in use is kept');
    const u = await store.usage('active');
    assert.equal(u.dayUsed, 1);
    assert.equal(u.inflight, 1);
  });

  it('day and month counters roll over at 00:00 UTC, including a leap day', async () => {
    let clock = Date.UTC(2024, 1, 28, 23, 59, 59, 990); // 2024-02-28, a leap year
    const store = new MemoryStore(() => clock);
    const p = policy({ quotaDay: 2, quotaMonth: 3 });
    await admitAll(store, 's', p, 2);
    const denied = await store.admit('s', p, 'x', LEASE_TTL);
    assert.equal(denied.reason, 'quota_exceeded');
    assert.equal(denied.dayResetMs, 10);
    assert.equal(denied.monthResetMs, DAY_MS + 10, 'February 2024 has a 29th');
    clock += 10; // 2024-02-29 00:00:00.000
    const d = await store.admit('s', p, 'y', LEASE_TTL);
    assert.deepEqual([d.allowed, d.dayUsed, d.monthUsed], [true, 1, 3]);
    assert.equal((await store.admit('s', p, 'z', LEASE_TTL)).reason, 'quota_exceeded', 'the month quota still binds');
    clock += DAY_MS; // 2024-03-01
    const m = await store.admit('s', p, 'w', LEASE_TTL);
    assert.deepEqual([m.allowed, m.dayUsed, m.monthUsed], [true, 1, 1]);
  });
});

describe('admit.lua on redis-server', () => {
  it('its UTC calendar (civil_from_days) agrees with calendar.ts for every day 1970-2100', async () => {
    const src = readFileSync(new URL('../../../lua-compat/redis/admit.lua', import.meta.url), 'utf8');
    const fn = (name: string): string => {
      const m = new RegExp(`local function ${name}\\(.*?\\nend\\n`, 's').exec(src);
      assert.ok(m, `admit.lua defines ${name}`);
      return m[0];
    };
    // Only admit.lua's own calendar functions, run on the real server, one call per day.
    const script = `${fn('civil')}${fn('days_in_month')}
      local out = {}
      for z = tonumber(ARGV[1]), tonumber(ARGV[2]) do
        local y, m, d = civil(z)
        out[#out + 1] = (z - d + 1 + days_in_month(y, m)) * 86400000
        out[#out + 1] = y * 100 + m
      end
      return out`;
    const client = await rawClient(topologies[0]!);
    {
      const last = Math.floor(Date.UTC(2100, 11, 31) / DAY_MS);
      for (let from = 0; from <= last; from += 10_000) {
        const to = Math.min(last, from + 9_999);
        const got = await client.eval(script, 0, from, to) as number[];
        for (let z = from; z <= to; z++) {
          const p = periodsAt(z * DAY_MS + 12 * 3_600_000);
          const i = (z - from) * 2;
          if (got[i] !== p.monthEndMs || got[i + 1] !== p.month) {
            assert.fail(`day ${z} (${new Date(z * DAY_MS).toISOString().slice(0, 10)}): lua says month ${got[i + 1]} ends ${got[i]}, calendar.ts says ${p.month} ends ${p.monthEndMs}`);
          }
        }
      }
    }
  });
});

for (const topo of topologies) describe(`limit_conn.lua on redis-server (${topo.name})`, () => {
  it('keeps leases in P lc:<zone>:{<first 32 hex of sha256(value)>}, scored by expiry on the Redis clock; ZREM gives one back', async () => {
    const prefix = `${runPrefix}lcs:`;
    const store = await redisStore(topo, prefix);
    const client = await rawClient(topo);
    {
      const value = 'an API key é';
      const key = `${prefix}lc:addr:{${createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 32)}}`;
      const redisMs = async (): Promise<number> => { const [sec, usec] = await client.time(); return Number(sec) * 1000 + Math.floor(Number(usec) / 1000); };
      const before = await redisMs();
      assert.equal((await store.limitConn([{ zone: 'addr', key: value, max: 2 }], 'lease-1', 5000)).passed, true);
      assert.equal(await client.type(key), 'zset');
      const [member, score] = await client.zrange(key, 0, -1, 'WITHSCORES');
      assert.equal(member, 'lease-1');
      const pttl = await client.pttl(key);
      const after = await redisMs();
      assert.ok(Number(score) >= before + 5000 && Number(score) <= after + 5000, `expiry ${score} is Redis now + ttl (now in ${before}..${after})`);
      // On Redis's clock, however long this machine took between the calls.
      assert.ok(pttl >= 5000 - (after - before) - 1, `the set lives as long as its lease (pttl ${pttl}, ${after - before} ms gone by)`);
      await store.releaseConn([{ zone: 'addr', key: value, max: 2 }], 'lease-1');
      assert.equal(await client.zcard(key), 0);
    }
  });
});

describe('clusterSlot', () => {
  it('agrees with CLUSTER KEYSLOT, hash tags and multi-byte keys included', async () => {
    const cluster = topologies.find((t) => t.cluster)!;
    const client = await rawClient(cluster);
    const keys = ['foo', '123456789', 'sluice:rl:{c-1}:tb', 'a{}b', '{}{x}', 'x{y', 'lr:z:{é}', 'k\u{1F600}', ''];
    for (let i = 0; i < 50; i++) keys.push(`sluice:key:${randomBytes(8).toString('hex')}`);
    for (const key of keys) {
      assert.equal(clusterSlot(key), Number(await (client as Cluster).call('CLUSTER', 'KEYSLOT', key)), `slot of ${JSON.stringify(key)}`);
    }
  });
});

describe('store.tls against a redis-server that speaks only TLS and wants client certificates', () => {
  it('connects with the CA and a client certificate; without the certificate, or trusting another CA, nothing gets through', async () => {
    const pki = await makeTestPki();
    const r = await startRedisTls(pki);
    const cfg = (tls: NonNullable<StoreConfig['tls']> | undefined): StoreConfig => ({
      ...storeConfigOf({ kind: 'redis', url: r.url, timeout_ms: 1000, prefix: runPrefix }), ...(tls === undefined ? {} : { tls }),
    });
    const stores = {
      good: new RedisStore(cfg({ ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, reject_unauthorized: true })),
      noClientCert: new RedisStore(cfg({ ca: pki.ca, reject_unauthorized: true })),
      wrongCa: new RedisStore(cfg({ ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey, reject_unauthorized: true })),
      plaintext: new RedisStore(cfg(undefined)),
    };
    try {
      await stores.good.ready(5000);
      assert.equal((await stores.good.admit('tls', policy({ rate: FROZEN, burst: 1 }), 'l', LEASE_TTL)).allowed, true);
      for (const [name, store] of Object.entries(stores)) {
        if (name !== 'good') await assert.rejects(store.ping(), `${name} must not reach the server`);
      }
    } finally {
      await Promise.all(Object.values(stores).map((s) => s.close()));
      await r.stop();
      await pki.remove();
    }
  });
});

describe('store.password on a server with requirepass', () => {
  it('authenticates with store.password; without it every command is refused', async () => {
    const r = await startRedis(['--requirepass', 's3cret pass']);
    const cfg = (password?: string): StoreConfig => ({
      ...storeConfigOf({ kind: 'redis', url: r.url, timeout_ms: 1000, prefix: runPrefix }), ...(password === undefined ? {} : { password }),
    });
    const good = new RedisStore(cfg('s3cret pass'));
    const bad = new RedisStore(cfg());
    try {
      await good.ready(5000);
      assert.equal((await good.admit('pw', policy({ rate: FROZEN, burst: 1 }), 'l', LEASE_TTL)).allowed, true);
      await assert.rejects(bad.ping(), /NOAUTH|Stream isn't writeable|closed/);
    } finally {
      await good.close();
      await bad.close();
      await r.stop();
    }
  });
});
