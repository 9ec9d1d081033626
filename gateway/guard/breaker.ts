import type { BreakerConfig } from '../config/types.js';

/** What the breaker lets a store call do now. */
export type Admission = 'call' | 'probe' | 'skip';

const SLOTS = 10;

/**
 * Opens on evidence, as Envoy's outlier detection ejects a host: `consecutive_failures`
 * calls in a row failed, or at least `failure_percent` of the calls in the last
 * `window_ms` did, once that window holds `min_calls`. One slow call is not evidence:
 * it is decided by the failure policy on its own, and the store keeps deciding the rest.
 * While open, one probe per probe interval goes to the store, and its success closes it.
 */
export class Breaker {
  private open = false;
  private consecutive = 0;
  private probing = false;
  private nextProbeAt = 0;
  /** Calls and failures per slot of window_ms / SLOTS, as a ring. */
  private readonly calls = new Array<number>(SLOTS).fill(0);
  private readonly failures = new Array<number>(SLOTS).fill(0);
  private slot = 0;
  private slotEndsAt = 0;
  private readonly slotMs: number;

  constructor(
    private readonly cfg: BreakerConfig,
    private readonly probeIntervalMs: number,
    private readonly onChange: (open: boolean, reason: string) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.slotMs = Math.max(1, cfg.window_ms / SLOTS);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** A probe was let through and its outcome has not been recorded yet. */
  get probeInFlight(): boolean {
    return this.probing;
  }

  admit(): Admission {
    if (!this.open) return 'call';
    const now = this.now();
    if (this.probing || now < this.nextProbeAt) return 'skip';
    this.probing = true;
    this.nextProbeAt = now + this.probeIntervalMs;
    return 'probe';
  }

  /** The outcome of a call admit() let through. */
  record(ok: boolean, admission: Admission, reason: string): void {
    if (admission === 'probe') {
      this.probing = false;
      if (ok) this.close('probe succeeded');
      return;
    }
    // A call sent before the breaker opened and answered after: the probes decide now.
    if (this.open) return;
    this.count(ok);
    this.consecutive = ok ? 0 : this.consecutive + 1;
    if (ok) return;
    if (this.consecutive >= this.cfg.consecutive_failures) {
      this.trip(`${this.consecutive} store calls in a row failed (last: ${reason})`);
      return;
    }
    const calls = sum(this.calls);
    const failed = sum(this.failures);
    if (calls >= this.cfg.min_calls && failed * 100 >= calls * this.cfg.failure_percent) {
      this.trip(`${failed} of the last ${calls} store calls failed (last: ${reason})`);
    }
  }

  private count(ok: boolean): void {
    const now = this.now();
    if (now >= this.slotEndsAt) {
      // Clear every slot the clock passed over since the last call (all of them after a quiet spell).
      const passed = this.slotEndsAt === 0 ? SLOTS : Math.min(SLOTS, 1 + Math.floor((now - this.slotEndsAt) / this.slotMs));
      for (let i = 0; i < passed; i++) {
        this.slot = (this.slot + 1) % SLOTS;
        this.calls[this.slot] = 0;
        this.failures[this.slot] = 0;
      }
      this.slotEndsAt = now + this.slotMs;
    }
    this.calls[this.slot]!++;
    if (!ok) this.failures[this.slot]!++;
  }

  private trip(reason: string): void {
    this.open = true;
    this.probing = false;
    this.nextProbeAt = this.now() + this.probeIntervalMs;
    this.onChange(true, reason);
  }

  private close(reason: string): void {
    this.open = false;
    this.consecutive = 0;
    this.calls.fill(0);
    this.failures.fill(0);
    this.onChange(false, reason);
  }
}

function sum(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s;
}
