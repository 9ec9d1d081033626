import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, Grant, LimitPolicy } from '../store/types.js';
import { TokenLeases, type TakeOutcome, type Unused } from './token-leases.js';

// Issue 20: a busy subject's requests never wait for its next batch. Once half of a lease
// is spent, use() asks for a refill that brings the lease back to one batch; the rest of
// the lease keeps admitting meanwhile. The rules on an injected clock and a memory store
// (whose take() is admit.lua's, the contract suite says so).

const LEASE = { enabled: true, target_ms: 100, max_share: 0.1 };
// A bucket big enough that max_share (0.1 x 2000 = 200) is the cap, never the store's tenth.
const P: LimitPolicy = { rate: 1e9, burst: 2000, quotaDay: 0, quotaMonth: 0, maxInflight: 0 };

interface Rig {
  readonly leases: TokenLeases;
  readonly store: MemoryStore;
  readonly returned: Unused[];
  now: number;
  /** use() for one request, with the 100 ms pace windows advanced as the load goes. */
  use(): ReturnType<TokenLeases['use']>;
  /** A first batch, taken and held the way GuardedLimiter takes one for a request. */
  takeFirst(n: number): Promise<Grant>;
}

function rig(): Rig {
  const store = new MemoryStore(() => r.now);
  const returned: Unused[] = [];
  const r: Rig = {
    store, returned, now: 1_000_000,
    leases: new TokenLeases(LEASE, (u) => returned.push(u), () => r.now),
    use: () => r.leases.use('s', P, 1),
    takeFirst: async (n) => {
      const g = await store.take('s', P, n);
      r.leases.hold('s', P, g, 1);
      return g;
    },
  };
  return r;
}

/** A pace of 3,000 requests a second: a batch of 100 ms of it is 300, capped by max_share at 200. */
function warm(r: Rig): void {
  for (let w = 0; w < 5; w++) {
    for (let i = 0; i < 300; i++) r.leases.use('s', P, 1);
    r.now += 100;
  }
}

function admitted(u: ReturnType<TokenLeases['use']>): { decision: Decision; refill: number } {
  assert.ok('decision' in u, `admitted from the lease, not ${JSON.stringify(u)}`);
  return u;
}

describe('token leases: refills ahead of need (injected clock)', () => {
  it('at half a lease the next request asks for a refill back to one batch, and no other until it lands', async () => {
    const r = rig();
    warm(r);
    const u = r.use();
    assert.ok('take' in u);
    assert.equal(u.take, 200, 'a batch of 100 ms of this pace, within max_share');
    await r.takeFirst(u.take); // 199 left for others
    const refills: number[] = [];
    for (let i = 0; i < 99; i++) refills.push(admitted(r.use()).refill);
    assert.deepEqual(refills.filter((n) => n > 0), [], 'above half: nothing to take yet');
    const at = admitted(r.use()); // 99 left of 199
    assert.equal(at.refill, 200 - 99, 'the refill tops the lease up to one batch');
    // The refill is in flight: the next requests are admitted from what is left, and none asks again.
    let pending!: (o: TakeOutcome) => void;
    r.leases.takingFor('s', new Promise<TakeOutcome>((res) => { pending = res; }));
    for (let i = 0; i < 99; i++) assert.equal(admitted(r.use()).refill, 0);
    // Spent before the refill landed: now, and only now, a request waits for it.
    const spent = r.use();
    assert.ok('wait' in spent, 'a spent lease with a refill on its way waits for that refill, not a call of its own');
    r.leases.add('s', P, await r.store.take('s', P, 101));
    pending('retry');
    const after = admitted(r.use());
    assert.equal(after.refill, 0);
    assert.equal(r.leases.heldUnits(), 100, 'the 101 units of the refill, one spent');
  });

  it('a lease never holds more than one batch, and every request it admits spent a unit the store gave out', async () => {
    const r = rig();
    warm(r);
    let taken = (await r.takeFirst(200)).taken;
    let admittedN = 1;
    let peak = r.leases.heldUnits();
    for (let i = 0; i < 2_000; i++) {
      if (i % 10 === 0) r.now += 1; // 10,000 a second; the bucket (1e9/s) refills meanwhile
      const u = admitted(r.use());
      admittedN++;
      if (u.refill > 0) { // the refill lands at once
        const g = await r.store.take('s', P, u.refill);
        taken += g.taken;
        r.leases.add('s', P, g);
      }
      peak = Math.max(peak, r.leases.heldUnits());
    }
    assert.ok(peak <= 200, `held at most one batch (peak ${peak})`);
    assert.equal(admittedN + r.leases.heldUnits(), taken, 'admitted + still held = taken from the store, exactly');
  });

  it('a refused refill leaves the lease as it was; it runs out, and then the store is asked', async () => {
    const r = rig();
    warm(r);
    await r.takeFirst(200);
    for (let i = 0; i < 99; i++) r.use();
    const at = admitted(r.use());
    assert.ok(at.refill > 0);
    const refused: Grant = { decision: { ...at.decision, allowed: false, reason: 'rate_limited' }, taken: 0, day: 0, month: 0 };
    r.leases.add('s', P, refused);
    assert.equal(r.leases.heldUnits(), 99, 'nothing added, nothing taken away');
    for (let i = 0; i < 99; i++) admitted(r.use());
    const next = r.use();
    assert.ok('take' in next, 'spent, with nothing on its way: a store call');
  });

  it('a refill for a lease that expired meanwhile becomes a lease of its own; the old units go back', async () => {
    const r = rig();
    warm(r);
    await r.takeFirst(200);
    for (let i = 0; i < 100; i++) r.use();
    r.now += 250; // past the lease's 2 x target_ms
    r.leases.add('s', P, await r.store.take('s', P, 101));
    assert.deepEqual(r.returned.map((u) => u.units), [99], 'the expired lease gave back what it had not spent');
    assert.equal(r.leases.heldUnits(), 101);
  });
});
