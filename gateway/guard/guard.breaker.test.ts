import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Breaker, type Admission } from './breaker.js';

// The breaker's rules on a clock the test moves: it opens on evidence only.

const RULES = { consecutive_failures: 5, failure_percent: 50, min_calls: 20, window_ms: 10_000 };

function breaker(): { b: Breaker; changes: string[]; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const changes: string[] = [];
  const b = new Breaker(RULES, 200, (open, reason) => changes.push(`${open ? 'open' : 'closed'}: ${reason}`), () => clock.now);
  return { b, changes, clock };
}

/** One call through the breaker, with the outcome given. */
function call(b: Breaker, ok: boolean): Admission {
  const a = b.admit();
  if (a !== 'skip') b.record(ok, a, ok ? '' : 'store admit exceeded 50 ms');
  return a;
}

describe('store breaker', () => {
  it('one slow call, or four in a row, leave it closed; the fifth in a row opens it', () => {
    const { b, changes } = breaker();
    call(b, false);
    assert.equal(b.isOpen, false, 'one failure is not evidence');
    for (let i = 0; i < 3; i++) call(b, false);
    assert.equal(b.isOpen, false, 'four in a row');
    call(b, false);
    assert.equal(b.isOpen, true);
    assert.deepEqual(changes, ['open: 5 store calls in a row failed (last: store admit exceeded 50 ms)']);
  });

  it('a success between failures resets the run', () => {
    const { b } = breaker();
    for (let i = 0; i < 20; i++) call(b, true);
    for (let i = 0; i < 4; i++) call(b, false);
    call(b, true);
    for (let i = 0; i < 4; i++) call(b, false);
    assert.equal(b.isOpen, false, '8 of 29 failed, never 5 in a row');
  });

  it('half the calls of the window failing opens it, once the window holds min_calls', () => {
    const { b, changes } = breaker();
    // Alternating: never two failures in a row, so only the rate can open it.
    for (let i = 0; i < 18; i++) call(b, i % 2 === 0);
    assert.equal(b.isOpen, false, '9 of 18 failed: under min_calls');
    call(b, true);
    call(b, false);
    assert.equal(b.isOpen, true, '10 of 20 failed');
    assert.deepEqual(changes, ['open: 10 of the last 20 store calls failed (last: store admit exceeded 50 ms)']);
  });

  it('failures older than the window no longer count', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 19; i++) call(b, i % 2 === 1);
    clock.now += RULES.window_ms + 1;
    for (let i = 0; i < 19; i++) call(b, i % 3 !== 0);
    assert.equal(b.isOpen, false, 'the new window holds 7 failures of 19, the old ones are gone');
  });

  it('open: calls skip the store, one probe per interval, and a successful probe closes it', () => {
    const { b, changes, clock } = breaker();
    for (let i = 0; i < 5; i++) call(b, false);
    assert.equal(b.admit(), 'skip', 'no call until the probe interval has passed');
    clock.now += 200;
    const probe = b.admit();
    assert.equal(probe, 'probe');
    assert.equal(b.admit(), 'skip', 'one probe at a time');
    b.record(false, probe, 'still down');
    assert.equal(b.isOpen, true, 'a failed probe keeps it open');
    assert.equal(b.admit(), 'skip');
    clock.now += 200;
    assert.equal(call(b, true), 'probe');
    assert.equal(b.isOpen, false);
    assert.equal(b.admit(), 'call');
    assert.equal(changes.at(-1), 'closed: probe succeeded');
    // Closed afresh: the failures before it are forgotten.
    for (let i = 0; i < 4; i++) call(b, false);
    assert.equal(b.isOpen, false);
  });

  it('answers of calls sent before it opened do not count once it is open', () => {
    const { b } = breaker();
    const inFlight = Array.from({ length: 8 }, () => b.admit());
    for (const a of inFlight.slice(0, 5)) b.record(false, a, 'timeout');
    assert.equal(b.isOpen, true);
    for (const a of inFlight.slice(5)) b.record(true, a, '');
    assert.equal(b.isOpen, true, 'only a probe closes it');
  });
});
