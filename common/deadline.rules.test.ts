import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { DeadlineExceeded, withDeadline, type LateReply } from './deadline.js';

// The store deadline's rules on mocked timers and an injected clock: when a call loses,
// when a late loop earns it the grace, and what is heard of an answer that came after
// it lost. The clock is moved apart from the timers to stage a late timer (a stalled
// event loop) without stalling one. (guard.deadline.test.ts shows the part only real
// sockets can: a reply already read when the late timer runs wins.)

const MS = 50;
const LATE_LOOP = { thresholdMs: 10, graceMs: 100 };

/** A call that answers (or fails) when the test says. */
function pending<T>(): { p: Promise<T>; answer(v: T): void; fail(e: Error): void } {
  let answer!: (v: T) => void;
  let fail!: (e: Error) => void;
  const p = new Promise<T>((res, rej) => { answer = res; fail = rej; });
  return { p, answer, fail };
}

/** Watches a deadline from the start (so its rejection is always handled): `now()` is its outcome so far. */
function watch<T>(p: Promise<T>): { now(): T | Error | 'pending'; done: Promise<T | Error> } {
  let state: T | Error | 'pending' = 'pending';
  const done = p.then((v) => (state = v), (e: Error) => (state = e));
  return { now: () => state, done };
}

/** One real turn of the event loop: the deadline's verdict runs in the turn after its timer (setImmediate). */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(t: TestContext): { clock: { now: number }; advance(ms: number): void; timerLate(by: number): void } {
  // Only setTimeout is mocked: the test runner itself needs the real setImmediate.
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const clock = { now: 0 };
  return {
    clock,
    /** Time passes and the loop keeps up: clock and timers move together. */
    advance: (ms) => { clock.now += ms; t.mock.timers.tick(ms); },
    /** The timer due now runs `by` ms late: the clock has moved on by the time it does. */
    timerLate: (by) => { clock.now += by; },
  };
}

describe('store deadline rules (mocked timers, injected clock)', () => {
  it('an answer before the deadline wins', async (t) => {
    const { clock, advance } = setup(t);
    const call = pending<string>();
    const d = watch(withDeadline(call.p, MS, 'call', { now: () => clock.now }));
    advance(MS - 1);
    call.answer('ok');
    assert.equal(await d.done, 'ok');
  });

  it('no answer: it loses one loop turn after the deadline, saying how late its timer ran', async (t) => {
    const { clock, advance } = setup(t);
    const d = watch(withDeadline(pending<string>().p, MS, 'call', { now: () => clock.now }));
    advance(MS);
    assert.equal(d.now(), 'pending', 'the verdict waits for the turn after the timer');
    await turn();
    const e = d.now();
    assert.ok(e instanceof DeadlineExceeded && e.lagMs === 0, String(e));
  });

  it('a failing call fails at once with its own error', async (t) => {
    const { clock } = setup(t);
    const call = pending<string>();
    const d = watch(withDeadline(call.p, MS, 'call', { now: () => clock.now }));
    call.fail(new Error('READONLY'));
    assert.match(String(await d.done), /READONLY/);
  });

  it('a late timer, with the store answering others since the call, earns the grace: an answer within it wins', async (t) => {
    const { clock, advance, timerLate } = setup(t);
    const call = pending<string>();
    const d = watch(withDeadline(call.p, MS, 'call', { now: () => clock.now, lateLoop: { ...LATE_LOOP, answeredSince: () => true } }));
    timerLate(30);
    advance(MS);
    await turn();
    assert.equal(d.now(), 'pending', 'graced: still waiting');
    advance(LATE_LOOP.graceMs - 30 - 1);
    call.answer('ok');
    assert.equal(await d.done, 'ok');
  });

  it('the grace ends at timeout + grace_ms from the call', async (t) => {
    const { clock, advance, timerLate } = setup(t);
    const d = watch(withDeadline(pending<string>().p, MS, 'call', { now: () => clock.now, lateLoop: { ...LATE_LOOP, answeredSince: () => true } }));
    timerLate(30);
    advance(MS);
    await turn();
    advance(LATE_LOOP.graceMs - 31);
    await turn();
    assert.equal(d.now(), 'pending');
    advance(1);
    await turn();
    const e = d.now();
    assert.ok(e instanceof DeadlineExceeded && e.lagMs === 30, String(e));
  });

  it('no grace for a timer on time, however the store is doing', async (t) => {
    const { clock, advance, timerLate } = setup(t);
    const d = watch(withDeadline(pending<string>().p, MS, 'call', { now: () => clock.now, lateLoop: { ...LATE_LOOP, answeredSince: () => true } }));
    timerLate(LATE_LOOP.thresholdMs);
    advance(MS);
    await turn();
    assert.ok((d.now()) instanceof DeadlineExceeded, 'late by the threshold only: on time');
  });

  it('no grace for a late timer when the store has answered nothing since the call (stopped, cut)', async (t) => {
    const { clock, advance, timerLate } = setup(t);
    let askedFrom = -1;
    const d = watch(withDeadline(pending<string>().p, MS, 'call', { now: () => clock.now, lateLoop: { ...LATE_LOOP, answeredSince: (from) => { askedFrom = from; return false; } } }));
    timerLate(30);
    advance(MS);
    await turn();
    assert.ok((d.now()) instanceof DeadlineExceeded);
    assert.equal(askedFrom, 0, 'asked about answers since the call was made');
  });

  it('an answer after the call lost is heard, with how long it waited and how late the timer was, and its value', async (t) => {
    const { clock, advance, timerLate } = setup(t);
    const call = pending<string>();
    const late: [LateReply, string][] = [];
    const d = watch(withDeadline(call.p, MS, 'call', { now: () => clock.now, onLate: (r, v) => late.push([r, v]) }));
    timerLate(7);
    advance(MS);
    await turn();
    assert.ok((d.now()) instanceof DeadlineExceeded);
    advance(40);
    call.answer('late');
    await call.p;
    await new Promise((r) => queueMicrotask(() => r(undefined)));
    assert.deepEqual(late, [[{ waitedMs: MS + 7 + 40, lagMs: 7 }, 'late']]);
  });
});
