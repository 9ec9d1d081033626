import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decision, LimitPolicy } from '../store/types.js';
import { DenyCache, type CachedVerdict } from './deny-cache.js';
import type { Verdict } from './guarded-limiter.js';

// The deny cache's rules on an injected clock, with the store a function that counts its
// calls: what is remembered, for how long, how a remembered denial reads as time passes,
// and how the requests of one subject share one store call when an entry runs out.
// (limits.deny-cache.test.ts shows it against a real Redis under a hammering client.)

const POLICY: LimitPolicy = { rate: 2, burst: 4, quotaDay: 100, quotaMonth: 0, maxInflight: 3 };
const MAX_MS = 5000;

const decision = (d: Partial<Decision>): Decision => ({
  allowed: true, reason: undefined, remaining: 2, retryAfterMs: 0, fullInMs: 1000,
  dayUsed: 10, monthUsed: 10, inflight: 1, dayResetMs: 60_000, monthResetMs: 600_000, ...d,
});
const store = (d: Partial<Decision>): Verdict => ({ source: 'store', decision: decision(d) });
// The store's state behind a rate denial: the bucket holds one token again retryAfterMs
// from now, so it is full (burst - 1) / rate seconds after that.
const rateLimited = (retryAfterMs: number): Verdict => store({ allowed: false, reason: 'rate_limited', remaining: 0, retryAfterMs, fullInMs: (POLICY.burst - 1) * 1000 / POLICY.rate + retryAfterMs });

/** A clock the test moves, and a store whose answers the test sets, counting its calls. */
function setup(maxSubjects?: number): { cache: DenyCache; clock: { now: number }; answer: { next: Verdict }; calls: () => number; ask: (subject?: string, policy?: LimitPolicy, maxMs?: number) => CachedVerdict } {
  const clock = { now: 1_000_000 };
  const answer = { next: store({}) };
  let calls = 0;
  const cache = new DenyCache(maxSubjects, () => clock.now);
  const ask = (subject = 's', policy = POLICY, maxMs = MAX_MS): CachedVerdict => {
    const v = cache.decide(subject, policy, 1, maxMs, () => { calls++; return answer.next; }, undefined, undefined);
    assert.ok(!(v instanceof Promise), 'a synchronous store gives a synchronous answer');
    return v;
  };
  return { cache, clock, answer, calls: () => calls, ask };
}

/** A cache on a clock the test moves, over a store whose answers wait until the test gives them (in order). */
function slowStore(): { clock: { now: number }; cache: DenyCache; pending: ((v: Verdict) => void)[]; call: () => Promise<Verdict>; calls: () => number } {
  const clock = { now: 0 };
  let calls = 0;
  const pending: ((v: Verdict) => void)[] = [];
  return {
    clock, pending, calls: () => calls,
    cache: new DenyCache(10, () => clock.now),
    call: () => { calls++; return new Promise<Verdict>((r) => pending.push(r)); },
  };
}

describe('deny cache (injected clock, a counting store)', () => {
  it('a rate denial is answered from memory until the store says a token comes back, then the store is asked again', () => {
    const { clock, answer, calls, ask } = setup();
    answer.next = rateLimited(400);
    assert.equal(ask().source, 'store');
    clock.now += 399;
    assert.equal(ask().source, 'cache');
    assert.equal(calls(), 1);
    clock.now += 1;
    answer.next = store({});
    assert.equal(ask().source, 'store', 'at retry-after, the store decides again');
    assert.equal(calls(), 2);
  });

  it('a remembered denial reads as the store would answer it now: its clocks run down', () => {
    const { clock, answer, ask } = setup();
    answer.next = rateLimited(400);
    ask();
    clock.now += 150;
    const d = ask().decision!;
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'rate_limited');
    assert.equal(d.retryAfterMs, 250);
    assert.equal(d.fullInMs, 1750);
    // 1750 ms from full at 2/s: 4 - 3.5 tokens, under one.
    assert.equal(d.remaining, 0);
    assert.equal(d.dayResetMs, 60_000 - 150);
  });

  it('no entry outlives deny_cache_ms, however far off the store says the next token is', () => {
    const { clock, answer, calls, ask } = setup();
    answer.next = rateLimited(60_000);
    ask(undefined, undefined, 1000);
    clock.now += 999;
    assert.equal(ask(undefined, undefined, 1000).source, 'cache');
    clock.now += 1;
    assert.equal(ask(undefined, undefined, 1000).source, 'store');
    assert.equal(calls(), 2);
    const d = ask(undefined, undefined, 1000).decision!;
    assert.equal(d.retryAfterMs, 60_000, 'the answer still says the real wait, not the entry\'s life');
  });

  it('deny_cache_ms 0 turns it off: every request asks the store', () => {
    const { answer, calls, ask } = setup();
    answer.next = rateLimited(400);
    for (let i = 0; i < 3; i++) assert.equal(ask(undefined, undefined, 0).source, 'store');
    assert.equal(calls(), 3);
  });

  it('an admission that emptied the bucket is remembered as the denial the next request would get', () => {
    const { clock, answer, calls, ask } = setup();
    // Empty after this one; full again in 1800 ms: the next token is (burst - 1) tokens from full, 300 ms away.
    answer.next = store({ allowed: true, remaining: 0, fullInMs: 1800 });
    assert.equal(ask().decision!.allowed, true);
    clock.now += 299;
    const d = ask();
    assert.equal(d.source, 'cache');
    assert.equal(d.decision!.reason, 'rate_limited');
    assert.equal(d.decision!.retryAfterMs, 1);
    clock.now += 1;
    answer.next = store({});
    assert.equal(ask().source, 'store');
    assert.equal(calls(), 2);
  });

  it('a used-up quota is remembered until the day resets (within deny_cache_ms)', () => {
    const { clock, answer, ask } = setup();
    answer.next = store({ allowed: true, remaining: 3, dayUsed: 100, dayResetMs: 2000 });
    ask();
    clock.now += 1999;
    const d = ask();
    assert.equal(d.source, 'cache');
    assert.equal(d.decision!.reason, 'quota_exceeded');
    assert.equal(d.decision!.retryAfterMs, 1);
    clock.now += 1;
    assert.equal(ask().source, 'store');
  });

  it('never remembers what another gateway can change: in-flight denials, the fallback\'s guesses, closed refusals, admissions with tokens left', () => {
    const { answer, calls, ask } = setup();
    const unremembered: Verdict[] = [
      store({ allowed: false, reason: 'concurrency_limited', retryAfterMs: 1000 }),
      { source: 'fallback', decision: decision({ allowed: false, reason: 'rate_limited', remaining: 0, retryAfterMs: 1000 }) },
      { source: 'closed', decision: undefined },
      store({ allowed: true, remaining: 1 }),
    ];
    for (const v of unremembered) {
      answer.next = v;
      ask();
      assert.equal(ask().source, v.source, JSON.stringify(v));
    }
    assert.equal(calls(), 2 * unremembered.length);
  });

  it('a new policy object (an admin change) makes an entry stale at once', () => {
    const { answer, calls, ask } = setup();
    answer.next = rateLimited(400);
    ask();
    assert.equal(ask().source, 'cache');
    answer.next = store({});
    assert.equal(ask('s', { ...POLICY, rate: 100 }).source, 'store');
    assert.equal(calls(), 2);
  });

  it('subjects are remembered apart, and at most maxSubjects of them (least recently used go first)', () => {
    const { answer, calls, ask } = setup(2);
    answer.next = rateLimited(400);
    ask('a'); ask('b');
    assert.equal(ask('a').source, 'cache');
    ask('c');
    assert.equal(ask('a').source, 'cache');
    assert.equal(ask('b').source, 'store', 'b was the least recently used of three');
    assert.equal(calls(), 4);
  });

  it('an entry is timed from before the call: a slow answer shortens it, never lengthens it', async () => {
    const clock = { now: 0 };
    const cache = new DenyCache(10, () => clock.now);
    let resolve!: (v: Verdict) => void;
    const first = cache.decide('s', POLICY, 1, MAX_MS, () => new Promise<Verdict>((r) => { resolve = r; }), undefined, undefined);
    clock.now = 80;
    resolve(rateLimited(400));
    await first;
    clock.now = 399;
    assert.equal((cache.decide('s', POLICY, 1, MAX_MS, () => rateLimited(1), undefined, undefined) as CachedVerdict).source, 'cache');
    clock.now = 400;
    let asked = false;
    await cache.decide('s', POLICY, 1, MAX_MS, () => { asked = true; return store({}); }, undefined, undefined);
    assert.ok(asked, '400 ms after the call was made, not after it answered');
  });

  it('when an entry runs out, one request asks the store and the others of that subject wait for its answer', async () => {
    const { clock, cache, pending, call, calls } = slowStore();
    void cache.decide('s', POLICY, 1, MAX_MS, () => rateLimited(100), undefined, undefined);
    clock.now = 100;
    const probe = cache.decide('s', POLICY, 1, MAX_MS, call, undefined, undefined);
    const waiters = Array.from({ length: 5 }, () => cache.decide('s', POLICY, 1, MAX_MS, call, undefined, undefined));
    assert.equal(calls(), 1, 'one probe');
    pending.shift()!(rateLimited(300));
    assert.equal((await probe).source, 'store');
    const answers = await Promise.all(waiters.map(async (w) => w));
    assert.deepEqual(answers.map((a) => a.source), ['cache', 'cache', 'cache', 'cache', 'cache'], 'the probe\'s denial answers them');
    assert.equal(calls(), 1);
  });

  it('when a probe\'s denial is over before it answers, its waiters go on one probe at a time, and none follows more than four', async () => {
    const { clock, cache, pending, call, calls } = slowStore();
    void cache.decide('s', POLICY, 1, MAX_MS, () => rateLimited(1), undefined, undefined);
    clock.now = 1;
    const all = [cache.decide('s', POLICY, 1, MAX_MS, call, undefined, undefined), ...Array.from({ length: 6 }, () => cache.decide('s', POLICY, 1, MAX_MS, call, undefined, undefined))];
    const seen: number[] = [];
    // Each answer is a denial of 5 ms that a slow store gives 10 ms after it was asked: already over.
    for (let round = 0; round < 4; round++) {
      clock.now += 10;
      pending.shift()!(rateLimited(5));
      await new Promise((r) => setImmediate(r));
      seen.push(calls());
    }
    // One waiter becomes the next probe and the rest follow it, for three rounds; the last
    // three have then followed four probes, and each asks the store itself.
    assert.deepEqual(seen, [2, 3, 4, 7]);
    for (const r of pending.splice(0)) r(store({}));
    assert.equal((await Promise.all(all.map(async (v) => v))).length, 7);
  });
});
