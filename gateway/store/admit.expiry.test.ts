import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { storeConfigOf } from '../../common/store-config.js';
import { StoreGuard } from '../guard/store-guard.js';
import { GuardedLimiter } from '../limits/guarded-limiter.js';
import { Metrics } from '../observe/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { keySchema } from './key-schema.js';
import { RedisStore, StoreCallExpired } from './redis-store.js';
import type { LimitPolicy } from './types.js';

// A store call the gateway gave up on must not charge the customer later (issue 22):
// admit.lua's ARGV[10] is the call's expiry on Redis's clock, and a call that arrives
// after it takes nothing; a late answer that did take something is given back.

const ADMIT = readFileSync(new URL('../../../lua-compat/redis/admit.lua', import.meta.url), 'utf8');
const K = keySchema('sluice:');
const QUOTA: LimitPolicy = { rate: 0, burst: 0, quotaDay: 1000, quotaMonth: 0, maxInflight: 0 };
const silent = { info() {}, warn() {}, error() {} };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('admit.lua expires_at (ARGV[10]) and late answers', () => {
  let redis: RedisProcess;
  let cli: Redis;
  before(async () => {
    redis = await startRedis(['--enable-debug-command', 'yes']);
    cli = new Redis(redis.url);
  });
  after(async () => {
    redis?.signal('SIGCONT');
    cli?.disconnect();
    await redis?.stop();
  });

  const run = (subject: string, ...tail: (string | number)[]): Promise<number[]> =>
    cli.eval(ADMIT, 3, K.bucket(subject), K.counters(subject), K.leases(subject), 5, 10, 1, 1000, 0, 0, '', 0, ...tail) as Promise<number[]>;
  const redisNow = async (): Promise<number> => { const [s, us] = await cli.time(); return Number(s) * 1000 + Math.floor(Number(us) / 1000); };
  const dayUsed = async (subject: string): Promise<number> => Number(await cli.hget(K.counters(subject), 'dn') ?? 0);

  it('a call past its expiry answers reason 5 and writes nothing; a future, 0 or absent expiry decides as before', async () => {
    const past = await run('exp-past', 0, (await redisNow()) - 1);
    assert.deepEqual(past.map(Number), [0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(await cli.exists(K.bucket('exp-past'), K.counters('exp-past')), 0, 'nothing written');
    assert.equal((await run('exp-future', 0, (await redisNow()) + 10_000))[0], 1);
    assert.equal((await run('exp-zero', 0, 0))[0], 1, '0: no expiry');
    assert.equal((await run('exp-none'))[0], 1, 'absent (the nginx module): as before');
    assert.equal(await dayUsed('exp-future') + await dayUsed('exp-zero') + await dayUsed('exp-none'), 3);
  });

  it('a call queued behind a paused Redis charges nothing when Redis resumes; without an expiry it would', async () => {
    const cfg = storeConfigOf({ kind: 'redis', url: redis.url, timeout_ms: 50, late_grace_ms: 50 });
    const measured = new RedisStore(cfg);
    const unmeasured = new RedisStore(cfg);
    try {
      await measured.ready(2000);
      await unmeasured.ready(2000);
      // The heartbeat samples the offset to Redis's clock; the other store never beat.
      await measured.heartbeat('expiry-test', 3000);
      redis.signal('SIGSTOP');
      const late = measured.admit('cut-measured', QUOTA, 'l1', 1000);
      const unguarded = unmeasured.admit('cut-unmeasured', QUOTA, 'l2', 1000);
      // Well past timeout_ms + late_grace_ms: the gateway decided these long ago.
      await sleep(300);
      redis.signal('SIGCONT');
      await assert.rejects(late, StoreCallExpired);
      assert.equal((await unguarded).allowed, true);
      assert.equal(await dayUsed('cut-measured'), 0, 'the abandoned call took no quota unit');
      assert.equal(await dayUsed('cut-unmeasured'), 1, 'a call without an expiry is charged when it arrives');
    } finally {
      redis.signal('SIGCONT');
      await measured.close();
      await unmeasured.close();
    }
  });

  it('a late answer that admitted (Redis slow, inside the expiry) is given back: the store counts only what it decided', async () => {
    // late_grace_ms 2000: the call's expiry is far enough away that a 300 ms stall still runs it.
    const cfg = storeConfigOf({ kind: 'redis', url: redis.url, timeout_ms: 50, late_grace_ms: 2000 });
    const store = new RedisStore(cfg);
    const metrics = new Metrics(cfg.timeout_ms);
    const guard = new StoreGuard(cfg, store, metrics, silent);
    const limiter = new GuardedLimiter(store, guard, metrics, { ...cfg.lease, enabled: false });
    try {
      await store.ready(2000);
      await store.heartbeat('late-test', 3000);
      // Redis busy for 300 ms: the call waits behind it, the deadline (this loop on time) hands the request to the fallback.
      void cli.call('DEBUG', 'SLEEP', '0.3');
      await sleep(20);
      const v = await limiter.admit('slow-store', QUOTA, 'l3', 1000, 'open');
      assert.equal(v.source, 'fallback');
      // The late answer admitted and took a unit; the guard gives it back.
      const undone = async (): Promise<number> => (await metrics.registry.getSingleMetric('sluice_store_late_undone_total')!.get()).values.find((x) => x.labels.op === 'admit')?.value ?? 0;
      for (let i = 0; i < 100 && (await undone()) === 0; i++) await sleep(20);
      assert.equal(await undone(), 1, 'one late answer reconciled');
      // The give-back is queued behind the late answer on the same connection: read after it.
      await store.ping();
      assert.equal(await dayUsed('slow-store'), 0, 'the unit the late answer took was given back');
    } finally {
      limiter.stop();
      guard.stop();
      await store.close();
    }
  });
});
