import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pool, PoolWaitTimeout } from './pool.js';

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => { resolve = r; });
  return { promise, resolve };
}

describe('Pool', () => {
  it('runs at most `concurrency` jobs, admits at most `queue` more, refuses the rest', async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const held = deferred();
    const a = pool.reserve()!;
    const b = pool.reserve()!;
    assert.ok(a && b);
    assert.equal(pool.reserve(), undefined, 'third reservation refused');
    const order: string[] = [];
    const pa = a.run(async () => { order.push('a'); await held.promise; return 'A'; });
    const pb = b.run(async () => { order.push('b'); return 'B'; });
    assert.deepEqual(pool.load, { inflight: 1, queued: 1, capacity: 2 });
    assert.equal(pool.header(), 'inflight=1; queued=1; capacity=2');
    assert.deepEqual(order, ['a'], 'b waits for the slot');
    held.resolve();
    assert.deepEqual(await Promise.all([pa, pb]), ['A', 'B']);
    assert.deepEqual(order, ['a', 'b']);
    assert.deepEqual(pool.load, { inflight: 0, queued: 0, capacity: 2 });
    assert.ok(pool.reserve(), 'room again');
  });

  it('a released reservation (client gone) frees its place, queued or waiting; release is idempotent', async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const held = deferred();
    const a = pool.reserve()!;
    const running = a.run(() => held.promise);
    const b = pool.reserve()!;
    const waiting = b.run(async () => 'never');
    b.release();
    b.release();
    assert.deepEqual(pool.load, { inflight: 1, queued: 0, capacity: 2 });
    // Releasing a running job does not free the slot: the work still runs.
    a.release();
    assert.equal(pool.load.inflight, 1);
    held.resolve();
    await running;
    assert.deepEqual(pool.load, { inflight: 0, queued: 0, capacity: 2 });
    // The abandoned waiter never runs; it stays pending, which the caller ignores.
    const raced = await Promise.race([waiting.then(() => 'ran'), new Promise((r) => setImmediate(r, 'pending'))]);
    assert.equal(raced, 'pending');
  });

  it('a job that throws frees its slot', async () => {
    const pool = new Pool({ concurrency: 1, queue: 0 });
    await assert.rejects(pool.reserve()!.run(async () => { throw new Error('boom'); }), /boom/);
    assert.deepEqual(pool.load, { inflight: 0, queued: 0, capacity: 1 });
  });

  it('waiting longer than waitTimeoutMs rejects with PoolWaitTimeout and gives the place back', async () => {
    const pool = new Pool({ concurrency: 1, queue: 1 });
    const held = deferred();
    const running = pool.reserve()!.run(() => held.promise);
    await assert.rejects(pool.reserve()!.run(async () => 'late', 30), PoolWaitTimeout);
    assert.deepEqual(pool.load, { inflight: 1, queued: 0, capacity: 2 });
    held.resolve();
    await running;
  });

  it('serves waiters first come, first served, and never exceeds the bounds under churn', async () => {
    const pool = new Pool({ concurrency: 2, queue: 3 });
    const done: number[] = [];
    let maxInflight = 0;
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      const r = pool.reserve()!;
      jobs.push(r.run(async () => {
        maxInflight = Math.max(maxInflight, pool.load.inflight);
        await new Promise((res) => setImmediate(res));
        done.push(i);
      }));
    }
    assert.equal(pool.reserve(), undefined);
    await Promise.all(jobs);
    assert.equal(maxInflight, 2);
    assert.deepEqual(done, [0, 1, 2, 3, 4]);
  });

  it('refuses nonsense bounds', () => {
    assert.throws(() => new Pool({ concurrency: 0, queue: 1 }), RangeError);
    assert.throws(() => new Pool({ concurrency: 1, queue: -1 }), RangeError);
  });
});
