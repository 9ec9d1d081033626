import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LeaseConfig } from '../config/types.js';
import type { Decision, Grant, LimitPolicy } from '../store/types.js';
import { TokenLeases, type Unused } from './token-leases.js';

// Token leases' rules on an injected clock: when a request asks the store for one unit or
// a batch, how a batch is sized from the subject's pace and capped by the plan, how the
// requests after it are admitted from it, and when its unused units go back.
// (limits.leases.test.ts runs them through two gateways on one Redis; the store side of a
// batch, admit.lua's max_cost, is in store.contract.test.ts.)

const CFG: LeaseConfig = { enabled: true, target_ms: 75, max_share: 0.1 };
const POLICY: LimitPolicy = { rate: 1000, burst: 2000, quotaDay: 0, quotaMonth: 0, maxInflight: 0 };

const decision = (d: Partial<Decision> = {}): Decision => ({
  allowed: true, reason: undefined, remaining: 500, retryAfterMs: 0, fullInMs: 1500,
  dayUsed: 40, monthUsed: 40, inflight: 0, dayResetMs: 60_000, monthResetMs: 600_000, ...d,
});
const grant = (taken: number, d: Partial<Decision> = {}): Grant => ({ decision: decision(d), taken, day: 20_000, month: 660 });

function setup(cfg: LeaseConfig = CFG): { leases: TokenLeases; clock: { now: number }; back: Unused[] } {
  const clock = { now: 1_000_000 };
  const back: Unused[] = [];
  return { leases: new TokenLeases(cfg, (u) => back.push(u), () => clock.now), clock, back };
}

/** `n` requests of the subject, `everyMs` apart (the pace TokenLeases measures); what the last one was told. */
function paced(leases: TokenLeases, clock: { now: number }, n: number, everyMs: number, policy = POLICY): ReturnType<TokenLeases['use']> {
  let last!: ReturnType<TokenLeases['use']>;
  for (let i = 0; i < n; i++) {
    clock.now += everyMs;
    last = leases.use('s', policy, 1);
  }
  return last;
}

describe('token leases (injected clock)', () => {
  it('only plans without an in-flight limit, and with some limit, lease', () => {
    assert.equal(TokenLeases.leasable(POLICY), true);
    assert.equal(TokenLeases.leasable({ ...POLICY, maxInflight: 5 }), false, 'a slot is given back per request: it cannot be taken in advance');
    assert.equal(TokenLeases.leasable({ ...POLICY, rate: 0 }), false, 'nothing to lease');
    assert.equal(TokenLeases.leasable({ ...POLICY, rate: 0, quotaDay: 100 }), true);
  });

  it('a subject with no pace yet asks for its own unit alone', () => {
    const { leases } = setup();
    assert.deepEqual(leases.use('s', POLICY, 1), { take: 1 });
  });

  it('a busy subject asks for a batch that lasts target_ms at its pace here', () => {
    const { leases, clock } = setup();
    // 400 a second, measured in 100 ms windows, each averaged with the rate before it:
    // 200, 300, 350, 375, 387.5 after five windows (201 requests); 75 ms of 387.5/s is 29.
    assert.deepEqual(paced(leases, clock, 200, 2.5), { take: 28 }, 'four windows: 375/s');
    assert.deepEqual(paced(leases, clock, 1, 2.5), { take: 29 });
  });

  it('a batch is never more than max_share of the burst, or of a quota; under 2 units is one request alone', () => {
    const { leases, clock } = setup();
    assert.deepEqual(paced(leases, clock, 201, 2.5, { ...POLICY, burst: 100 }), { take: 10 }, 'a tenth of burst 100');
    const q = setup();
    assert.deepEqual(paced(q.leases, q.clock, 201, 2.5, { ...POLICY, quotaDay: 50 }), { take: 5 }, 'a tenth of a 50 quota');
    const slow = setup();
    assert.deepEqual(paced(slow.leases, slow.clock, 20, 50), { take: 1 }, '20 a second is under two units per 75 ms');
  });

  it('what a batch took beyond its own request admits the next ones, each answered as the store would with the unspent units still there', () => {
    const { leases, clock } = setup();
    const first = leases.hold('s', POLICY, grant(5, { remaining: 100, dayUsed: 45 }), 1);
    assert.equal(first.remaining, 104, 'the store left 100; this gateway holds 4 more');
    assert.equal(first.dayUsed, 41);
    clock.now += 10;
    const admitted = [1, 2, 3, 4].map(() => leases.use('s', POLICY, 1));
    assert.deepEqual(admitted.map((a) => ('decision' in a ? a.decision.remaining : a)), [103, 102, 101, 100]);
    assert.equal((admitted[0] as { decision: Decision }).decision.fullInMs, 1490, 'clocks run down from the batch');
    assert.equal(leases.heldUnits(), 0);
    assert.ok('take' in leases.use('s', POLICY, 1), 'spent: the store is asked again');
  });

  it('a grant of one unit is that request\'s decision, and holds nothing', () => {
    const { leases } = setup();
    const d = leases.hold('s', POLICY, grant(1, { remaining: 7 }), 1);
    assert.equal(d.remaining, 7);
    assert.equal(leases.heldUnits(), 0);
  });

  it('a lease lives twice target_ms; then its unused units go back, in the day and month they were counted in', () => {
    const { leases, clock, back } = setup();
    leases.hold('s', POLICY, grant(10), 1);
    clock.now += 149;
    assert.ok('decision' in leases.use('s', POLICY, 1));
    clock.now += 1;
    assert.ok('take' in leases.use('s', POLICY, 1), 'expired at 150 ms');
    assert.deepEqual(back, [{ subject: 's', policy: POLICY, units: 8, day: 20_000, month: 660 }]);
  });

  it('a new policy object (an admin change) gives the old lease back at once', () => {
    const { leases, back } = setup();
    leases.hold('s', POLICY, grant(6), 1);
    const changed = { ...POLICY, rate: 10 };
    assert.ok('take' in leases.use('s', changed, 1));
    assert.equal(back[0]?.units, 5);
  });

  it('a new batch for a subject gives back what the old one had left', () => {
    const { leases, back } = setup();
    leases.hold('s', POLICY, grant(6), 1);
    leases.hold('s', POLICY, grant(4), 1);
    assert.deepEqual(back.map((u) => u.units), [5]);
    assert.equal(leases.heldUnits(), 3);
  });

  it('while a batch is being taken, the subject\'s other requests wait for how it turns out instead of each asking', async () => {
    const { leases } = setup();
    let settle!: (o: 'retry') => void;
    const outcome = new Promise<'retry'>((r) => { settle = r; });
    leases.takingFor('s', outcome);
    const waiting = leases.use('s', POLICY, 1);
    assert.ok('wait' in waiting);
    assert.ok('take' in leases.use('other', POLICY, 1), 'other subjects are not held up');
    settle('retry');
    assert.equal(await (waiting as { wait: Promise<string> }).wait, 'retry');
    await new Promise((r) => setImmediate(r));
    assert.ok('take' in leases.use('s', POLICY, 1), 'once it is over, requests ask again');
  });

  it('stop gives back every lease still held', () => {
    const { leases, back } = setup();
    leases.hold('a', POLICY, grant(3), 1);
    leases.hold('b', POLICY, grant(5), 1);
    leases.stop();
    assert.deepEqual(back.map((u) => `${u.subject}:${u.units}`).sort(), ['a:2', 'b:4']);
    assert.equal(leases.heldUnits(), 0);
  });
});
