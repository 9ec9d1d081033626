import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ShedConfig } from '../config/types.js';

/**
 * How overloaded this process is, as a shed level: the number of priority tiers, lowest
 * first, whose requests are refused right now.
 *
 * Tiers: 0 is public routes (no identity), then one per distinct plan priority in
 * ascending order. The highest plan priority is never a shed tier, so with S sheddable
 * tiers the level runs from 0 (serve everyone) to S (serve only the top priority).
 *
 * Overload ratio r = the larger of in-flight / max_inflight and loop delay /
 * max_event_loop_delay_ms (a signal whose threshold is 0 is left out). Below 1 nothing is
 * shed; the band from 1× to 2× the threshold is split evenly over the S tiers, so level L
 * is entered at r >= 1 + (L - 1) / S: just past the threshold only public routes are shed,
 * and the top priority is all that is left well before the threshold is doubled.
 *
 * Hysteresis, so a level does not flap as shedding relieves the very load that raised it:
 * the level rises at once (in-flight on the request that crosses a threshold, loop delay
 * on the sample that does), but falls one tier at a time, and only after r has stayed
 * under EXIT_MARGIN of the current level's entry point for HOLD_MS.
 */
export const EXIT_MARGIN = 0.9;
export const HOLD_MS = 1000;

/** Mean event-loop delay (ms) since the previous call. */
export type DelaySource = () => number;

export interface LoopDelayMonitor {
  readonly read: DelaySource;
  stop(): void;
}

// The histogram's own timer fires every RESOLUTION_MS; fewer wake-ups would blur the
// mean, more would cost CPU on an idle gateway.
const RESOLUTION_MS = 10;

// The histogram is never reset per window: a reset also forgets the last timer firing, so
// the one delta spanning it (exactly where a stall may sit) would be lost. Windows are
// differences of the running totals instead; a rare reset keeps the sum exact in a double.
const RESET_AFTER_SAMPLES = 1 << 20;

/** perf_hooks' event-loop delay histogram; each read is the mean over the window since the last one. */
export function loopDelayMonitor(): LoopDelayMonitor {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  h.enable();
  let count = 0;
  let sumNs = 0;
  return {
    read() {
      const c = h.count;
      // An empty histogram's mean is NaN: kept as the running sum, it would make every
      // later read NaN, and the loop-delay signal would never shed again.
      const s = c === 0 ? 0 : h.mean * c;
      // Each recorded value is the time between two timer firings, so an idle loop
      // records about the resolution itself; what exceeds it is the delay.
      const mean = c > count ? (s - sumNs) / (c - count) / 1e6 - RESOLUTION_MS : 0;
      if (c > RESET_AFTER_SAMPLES) {
        h.reset();
        count = 0;
        sumNs = 0;
      } else {
        count = c;
        sumNs = s;
      }
      return Math.max(0, mean);
    },
    stop: () => h.disable(),
  };
}

export class OverloadDetector {
  /** Requests in tiers below this are shed. Read on every request, so a plain field. */
  level = 0;
  /** Number of sheddable tiers (public routes plus every plan priority but the highest). */
  readonly sheddable: number;
  private readonly enterRatio: Float64Array;
  private readonly enterInflight: Float64Array;
  /** In-flight at which the next level up begins (Infinity when the in-flight signal is off or at the top). */
  private nextInflight: number;
  private peakInflight = 0;
  private calmSince: number;

  constructor(
    private readonly cfg: ShedConfig,
    sheddable: number,
    private readonly inflight: () => number,
    private readonly loopDelay: DelaySource,
    private readonly onLevel: (level: number, ratio: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sheddable = sheddable;
    this.enterRatio = new Float64Array(sheddable + 2).fill(Infinity);
    this.enterInflight = new Float64Array(sheddable + 2).fill(Infinity);
    for (let l = 1; l <= sheddable; l++) {
      this.enterRatio[l] = 1 + (l - 1) / sheddable;
      if (cfg.max_inflight > 0) this.enterInflight[l] = cfg.max_inflight * this.enterRatio[l]!;
    }
    this.nextInflight = this.enterInflight[1]!;
    this.calmSince = this.now();
  }

  /**
   * Called by the stage on every request with the in-flight count it just read: one
   * comparison unless a threshold was crossed, so a burst is met on the request that
   * makes it, not a sample interval later.
   */
  observe(n: number): void {
    if (n > this.peakInflight) this.peakInflight = n;
    if (n < this.nextInflight) return;
    let l = this.level;
    while (l < this.sheddable && n >= this.enterInflight[l + 1]!) l++;
    this.calmSince = this.now();
    this.setLevel(l, n / this.cfg.max_inflight);
  }

  /** One sample window: the peak in-flight and mean loop delay since the last one. */
  sample(): void {
    const t = this.now();
    const delay = this.loopDelay();
    let r = 0;
    if (this.cfg.max_inflight > 0) r = this.peakInflight / this.cfg.max_inflight;
    if (this.cfg.max_event_loop_delay_ms > 0) r = Math.max(r, delay / this.cfg.max_event_loop_delay_ms);
    this.peakInflight = this.inflight();
    let target = 0;
    while (target < this.sheddable && r >= this.enterRatio[target + 1]!) target++;
    if (target >= this.level) {
      this.calmSince = t;
      if (target > this.level) this.setLevel(target, r);
      return;
    }
    if (r >= this.enterRatio[this.level]! * EXIT_MARGIN) {
      this.calmSince = t;
      return;
    }
    if (t - this.calmSince >= HOLD_MS) {
      this.calmSince = t;
      this.setLevel(this.level - 1, r);
    }
  }

  private setLevel(l: number, ratio: number): void {
    if (l === this.level) return;
    this.level = l;
    this.nextInflight = this.enterInflight[l + 1]!;
    this.onLevel(l, ratio);
  }
}
