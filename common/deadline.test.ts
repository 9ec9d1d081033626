import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startRedis, type RedisProcess } from '../test/harness/redis.js';
import { DeadlineExceeded, withDeadline, type LateReply } from './deadline.js';

// The store deadline against a real redis-server: a reply that reached the socket while
// this process was busy is read, not taken for a timeout; a stopped server still loses.

/** Holds this process's event loop, as a burst of connections or a GC pause would. */
function busyFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the loop cannot turn */ }
}

describe('the store deadline', () => {
  let redis: RedisProcess;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
    await client.ping();
  });
  after(async () => {
    redis?.signal('SIGCONT');
    client?.disconnect();
    await redis?.stop();
  });

  it('a reply that arrived while the event loop was held past the deadline is read, not timed out', async () => {
    const guarded = withDeadline(client.ping(), 50, 'ping');
    // A bare timer raced against the same kind of call, for contrast: it runs in the
    // timers phase, before the poll phase reads the reply, and loses.
    let bare: NodeJS.Timeout | undefined;
    const raced = Promise.race([client.ping(), new Promise<string>((resolve) => { bare = setTimeout(() => resolve('timed out'), 50); })]);
    // ioredis's auto-pipelining writes both commands from a setImmediate; this one runs
    // right after it in the same check phase, before any poll phase could read a reply,
    // so the replies can only arrive while the loop is held below.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Long past the deadline, and long enough for Redis (another process) to have answered.
    busyFor(500);
    assert.equal(await guarded, 'PONG');
    assert.equal(await raced, 'timed out', 'the timer alone would have given up on an answered call');
    clearTimeout(bare);
  });

  it('a stopped Redis loses at the deadline, and its late answer is reported', async () => {
    let late: LateReply | undefined;
    const reported = new Promise<void>((resolve) => {
      redis.signal('SIGSTOP');
      const started = performance.now();
      withDeadline(client.ping(), 50, 'ping', { onLate: (l) => { late = l; resolve(); } }).then(
        () => assert.fail('a stopped server cannot answer'),
        (err: unknown) => {
          assert.ok(err instanceof DeadlineExceeded, String(err));
          assert.equal(err.message, 'ping exceeded 50 ms');
          assert.ok(performance.now() - started >= 50, 'not before the deadline');
          redis.signal('SIGCONT');
        },
      );
    });
    await reported;
    assert.ok(late !== undefined && late.waitedMs >= 50, `late answer after ${late?.waitedMs} ms`);
  });

  it('a late timer, with the store known to be answering, gives the call the grace; without it the call loses', async () => {
    // Redis paused: its answer can only come once it is resumed, which is once the bare call
    // has its verdict, so after both deadlines. (A timer for the resume could run in the same
    // timers phase as the late deadlines if a busy host held this process 50 ms more, and the
    // answer then won fairly, as the deadline intends: that was a flake, seen once in a full run.)
    redis.signal('SIGSTOP');
    const graced = withDeadline(client.ping(), 50, 'ping', { lateLoop: { thresholdMs: 10, graceMs: 5000, answeredSince: () => true } });
    const bare = withDeadline(client.ping(), 50, 'ping').then(() => 'answered', (e: unknown) => e);
    void bare.then(() => redis.signal('SIGCONT'));
    // The loop is held past the deadline: both timers run late, which is what the grace is for.
    busyFor(100);
    assert.equal(await graced, 'PONG', 'answered inside the grace');
    assert.ok((await bare) instanceof DeadlineExceeded, 'the same call without a grace loses at the deadline');
  });

  it('no grace for a timer on time, nor for a late one while the store answers nothing (stopped, cut)', async () => {
    redis.signal('SIGSTOP');
    try {
      let started = performance.now();
      const onTime = await withDeadline(client.ping(), 50, 'ping', { lateLoop: { thresholdMs: 10, graceMs: 5000, answeredSince: () => true } }).then(() => undefined, (e: unknown) => e);
      assert.ok(onTime instanceof DeadlineExceeded);
      // A busy host can run the timer late itself: then the grace is due (guard.deadline-rules.test.ts has the rule on an injected clock).
      assert.ok(onTime.lagMs > 10 || performance.now() - started < 2000, 'the grace applies only when the timer itself was late');
      started = performance.now();
      const silent = withDeadline(client.ping(), 50, 'ping', { lateLoop: { thresholdMs: 10, graceMs: 5000, answeredSince: () => false } });
      busyFor(100);
      await assert.rejects(silent, DeadlineExceeded);
      assert.ok(performance.now() - started < 2000, 'a store that answered nothing since the call gets no grace');
    } finally {
      redis.signal('SIGCONT');
    }
  });

  it('a failing call fails with its own error, not the deadline\'s', async () => {
    // A deadline far past any round trip: on a busy host 50 ms was not, and the deadline's
    // error came first (what this test is about is which error, not how fast).
    await assert.rejects(withDeadline(client.call('NOSUCHCOMMAND') as Promise<unknown>, 10_000, 'bad'), /unknown command/i);
  });
});
