import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { storeConfigOf } from '../config/load.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { RedisStore } from './redis-store.js';
import { MAX_ZONES_PER_ROUTE } from '../config/schema/routes.js';
import type { LimitPolicy } from './types.js';

// ioredis's auto-pipelines copy the client's script commands when they are created. A
// command defined later and sent while such a pipeline waits for its turn was missing
// from it, and ioredis then threw on the pipeline's reply, outside any promise: the
// gateway crashed ("results[i] is not iterable"). It took a stopped Redis (so pipelines
// queue up) and a zone count used for the first time.

describe('RedisStore: a command of any zone count can join a pipeline that is already waiting', () => {
  let redis: RedisProcess;
  let store: RedisStore;
  before(async () => {
    redis = await startRedis();
    store = new RedisStore(storeConfigOf({ kind: 'redis', url: redis.url, timeout_ms: 10_000 }));
    await store.ready(5000);
  });
  after(async () => {
    redis?.signal('SIGCONT');
    await store?.close();
    await redis?.stop();
  });

  it('with Redis stopped, pipelines queue; after SIGCONT every call is answered and the process lives', async () => {
    const p: LimitPolicy = { rate: 100, burst: 100, quotaDay: 0, quotaMonth: 0, maxInflight: 0 };
    redis.signal('SIGSTOP');
    let calls: Promise<unknown>[];
    try {
      // The first pipeline is sent and waits on the stopped server; the next one is created and waits its turn.
      const first = store.admit('s1', p, 'l1', 1000);
      await turn();
      await turn();
      const waiting = store.admit('s2', p, 'l2', 1000);
      // Joining that waiting pipeline: every zone count, each for the first time in this process.
      const zones = Array.from({ length: MAX_ZONES_PER_ROUTE }, (_, i) => Array.from({ length: i + 1 }, (_, z) => ({ zone: `z${z}`, key: `k${i}`, max: 10 })));
      calls = [first, waiting, ...zones.map((checks, i) => store.limitConn(checks, `lease-${i}`, 1000))];
      await turn();
    } finally {
      redis.signal('SIGCONT');
    }
    const settled = await Promise.allSettled(calls);
    assert.deepEqual(settled.map((s) => s.status), calls.map(() => 'fulfilled'), JSON.stringify(settled.filter((s) => s.status === 'rejected')));
    for (const r of settled.slice(2)) assert.equal((r as PromiseFulfilledResult<{ passed: boolean }>).value.passed, true);
  });

  it('more zones on one route than the commands defined is a clear error, not a crash', async () => {
    const checks = Array.from({ length: MAX_ZONES_PER_ROUTE + 1 }, (_, z) => ({ zone: `z${z}`, key: 'k', max: 10 }));
    await assert.rejects(store.limitConn(checks, 'lease-x', 1000), /at most 8/);
  });
});
