import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Decision, LimitPolicy } from '../store/types.js';
import { TokenLeases, type Unused } from './token-leases.js';

// Token leases count units: a request of `cost` units spends that many from the batch,
// a batch that cannot cover a request is given back and a new one taken, and the pace
// that sizes batches is in units per second. On an injected clock.

const POLICY: LimitPolicy = { rate: 1000, burst: 1000, quotaDay: 0, quotaMonth: 0, maxInflight: 0 };
const DECISION: Decision = {
  allowed: true, reason: undefined, remaining: 900, retryAfterMs: 0, fullInMs: 100, dayUsed: 100, monthUsed: 100, inflight: 0, dayResetMs: 1e6, monthResetMs: 2e6,
};

describe('token leases in units', () => {
  it('spends each request\'s cost from the batch, and gives back what cannot cover the next', () => {
    let now = 0;
    const back: Unused[] = [];
    const leases = new TokenLeases({ enabled: true, target_ms: 75, max_share: 0.1 }, (u) => back.push(u), () => now);
    // A batch of 20 units taken for a request of 5: 15 held.
    const d = leases.hold('s', POLICY, { decision: DECISION, taken: 20, day: 1, month: 1 }, 5);
    assert.equal(d.remaining, 900 + 15);
    const a = leases.use('s', POLICY, 5);
    assert.ok('decision' in a);
    assert.equal(a.decision.remaining, 900 + 10);
    assert.equal(a.decision.dayUsed, 100 - 10);
    assert.ok('decision' in leases.use('s', POLICY, 7));
    assert.equal(leases.heldUnits(), 3);
    // 3 left cannot cover 5: they go back, and the request asks the store.
    const c = leases.use('s', POLICY, 5);
    assert.ok('take' in c);
    assert.deepEqual(back.map((u) => u.units), [3]);
    assert.equal(leases.heldUnits(), 0);
  });

  it('sizes batches by units per second, and asks for no batch smaller than the request', () => {
    let now = 0;
    const leases = new TokenLeases({ enabled: true, target_ms: 100, max_share: 0.5 }, () => {}, () => now);
    // A request of 100 units every 10 ms: 10 000 units/s, so a batch would cover 100 ms (1000 units), capped at half the burst.
    let last: ReturnType<TokenLeases['use']> = { take: 0 };
    for (let i = 0; i < 30; i++) { last = leases.use('s', POLICY, 100); now += 10; }
    assert.ok('take' in last);
    assert.equal(last.take, 500);
    // The same number of one-unit requests is a hundredth of the pace: batches of under 10.
    const light = new TokenLeases({ enabled: true, target_ms: 100, max_share: 0.5 }, () => {}, () => now);
    for (let i = 0; i < 30; i++) { last = light.use('s', POLICY, 1); now += 10; }
    assert.ok('take' in last && last.take < 10, JSON.stringify(last));
    // A quiet subject's single request takes only itself.
    const quiet = new TokenLeases({ enabled: true, target_ms: 100, max_share: 0.5 }, () => {}, () => 0);
    const q = quiet.use('t', POLICY, 10);
    assert.ok('take' in q && q.take <= 10);
  });
});
