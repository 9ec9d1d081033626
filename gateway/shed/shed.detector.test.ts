import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ShedConfig } from '../config/types.js';
import { EXIT_MARGIN, HOLD_MS, loopDelayMonitor, OverloadDetector } from './overload.js';

// The overload detector alone, on an injected clock, in-flight count and loop-delay
// source: the mapping from "how far past the threshold" to a shed level, the
// hysteresis, and the event-loop-delay trigger, which an end-to-end test cannot drive
// deterministically (a gateway's loop delay under real load depends on the machine).

interface Rig {
  readonly d: OverloadDetector;
  inflight: number;
  delay: number;
  t: number;
  readonly changes: number[];
  /** Advances the clock by ms and takes one sample. */
  tick(ms: number): void;
}

function rig(cfg: Partial<ShedConfig>, sheddable: number): Rig {
  const full: ShedConfig = { max_inflight: 0, max_event_loop_delay_ms: 0, sample_interval_ms: 100, retry_after_s: 1, ...cfg };
  const changes: number[] = [];
  const r = {
    inflight: 0, delay: 0, t: 0, changes,
    d: undefined as unknown as OverloadDetector,
    tick(ms: number) { r.t += ms; r.d.sample(); },
  };
  r.d = new OverloadDetector(full, sheddable, () => r.inflight, () => r.delay, (l) => changes.push(l), () => r.t);
  return r;
}

describe('shed: overload detector', () => {
  it('maps in-flight past max_inflight to levels across the 1x–2x band, on the request that crosses', () => {
    // Three distinct priorities: public + the two lower ones are sheddable (S = 3).
    const r = rig({ max_inflight: 30 }, 3);
    for (const [n, want] of [[29, 0], [30, 1], [39, 1], [40, 2], [49, 2], [50, 3], [500, 3]] as const) {
      r.d.observe(n);
      assert.equal(r.d.level, want, `in-flight ${n}`);
    }
    assert.deepEqual(r.changes, [1, 2, 3]);
  });

  it('falls one tier per HOLD_MS, and only once the ratio is under EXIT_MARGIN of the level\'s entry', () => {
    const r = rig({ max_inflight: 10 }, 2);
    r.d.observe(15); // 1.5x: level 2 (entry ratios 1.0 and 1.5)
    assert.equal(r.d.level, 2);
    // 14 is under the entry (1.5) but above 1.5 * 0.9 = 1.35: too close to count as calm.
    r.inflight = 14;
    for (let i = 0; i < 30; i++) r.tick(100);
    assert.equal(r.d.level, 2, 'a ratio within the margin never lowers the level');
    r.inflight = 13; // 1.3 < 1.35: calm
    r.tick(100); // this window's peak was still 14
    for (let elapsed = 0; elapsed < HOLD_MS - 100; elapsed += 100) {
      r.tick(100);
      assert.equal(r.d.level, 2, `still held after ${elapsed + 100} ms calm`);
    }
    r.tick(100);
    assert.equal(r.d.level, 1, 'one tier down after HOLD_MS calm');
    // Level 1's entry is 1.0: 0.95 is within the margin (0.9), so it holds there.
    r.inflight = 9.5;
    for (let i = 0; i < 30; i++) r.tick(100);
    assert.equal(r.d.level, 1);
    r.inflight = 2;
    r.tick(100);
    for (let i = 0; i < HOLD_MS / 100; i++) r.tick(100);
    assert.equal(r.d.level, 0);
    assert.deepEqual(r.changes, [2, 1, 0]);
    assert.ok(EXIT_MARGIN < 1);
  });

  it('sees a burst between samples through the window peak, and a new crossing restarts the hold', () => {
    const r = rig({ max_inflight: 10 }, 1);
    r.d.observe(12);
    assert.equal(r.d.level, 1);
    r.inflight = 3;
    for (let i = 0; i < 8; i++) r.tick(100);
    r.d.observe(11); // a burst inside a window: no level change, but it must reset the calm
    assert.equal(r.d.level, 1);
    r.tick(100);
    for (let i = 0; i < HOLD_MS / 100 - 1; i++) r.tick(100);
    assert.equal(r.d.level, 1, 'the hold counts from the last overload, not the first');
    r.tick(100);
    assert.equal(r.d.level, 0);
  });

  it('raises the level from event-loop delay on the sample that sees it', () => {
    const r = rig({ max_event_loop_delay_ms: 50 }, 2);
    r.delay = 49;
    r.tick(100);
    assert.equal(r.d.level, 0);
    r.delay = 60; // 1.2x
    r.tick(100);
    assert.equal(r.d.level, 1);
    r.delay = 80; // 1.6x
    r.tick(100);
    assert.equal(r.d.level, 2);
    r.delay = 1;
    for (let i = 0; i <= 2 * HOLD_MS / 100 + 1; i++) r.tick(100);
    assert.equal(r.d.level, 0);
    assert.deepEqual(r.changes, [1, 2, 1, 0]);
  });

  it('takes the worse of the two signals', () => {
    const r = rig({ max_inflight: 100, max_event_loop_delay_ms: 50 }, 2);
    r.inflight = 10;
    r.delay = 80;
    r.tick(100);
    assert.equal(r.d.level, 2, 'loop delay decides when in-flight is low');
    const q = rig({ max_inflight: 10, max_event_loop_delay_ms: 50 }, 2);
    q.d.observe(11);
    q.delay = 0;
    q.tick(100);
    assert.equal(q.d.level, 1, 'in-flight decides when the loop is idle');
  });

  it('never sheds with a signal turned off (threshold 0)', () => {
    const r = rig({}, 2);
    r.d.observe(1_000_000);
    r.delay = 1_000_000;
    r.tick(100);
    assert.equal(r.d.level, 0);
  });

  it('measures a blocked event loop with the real perf_hooks monitor, even after a read that came before its first sample', async () => {
    const m = loopDelayMonitor();
    try {
      // At once, before the histogram has a sample (on a busy host the first can come late):
      // this read once left NaN in the running sum, and every read after it NaN.
      assert.equal(m.read(), 0);
      // Let the histogram's timer run a few times on an idle loop.
      await new Promise((resolve) => setTimeout(resolve, 60));
      // Idle is what the machine allows (a busy host delays even an idle loop's timer): the stall must show on top of it.
      const idle = m.read();
      // A test-side busy wait: the kind of stall a CPU-bound request would cause.
      const until = performance.now() + 150;
      while (performance.now() < until) { /* blocking the loop is the point */ }
      await new Promise((resolve) => setTimeout(resolve, 15));
      const blocked = m.read();
      assert.ok(blocked > 40 && blocked > idle + 30, `blocked loop delay ${blocked} ms, idle ${idle} ms`);
    } finally {
      m.stop();
    }
  });
});
