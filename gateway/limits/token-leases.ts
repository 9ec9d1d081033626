import { LRUCache } from 'lru-cache';
import type { LeaseConfig } from '../config/types.js';
import type { Decision, Grant, LimitPolicy } from '../store/types.js';

/** Units of a lease this gateway holds for one subject. */
interface Held {
  readonly policy: LimitPolicy;
  /** The store's decision when the batch was taken. */
  readonly decision: Decision;
  readonly takenAt: number;
  readonly expiresAt: number;
  readonly day: number;
  readonly month: number;
  left: number;
}

/** This gateway's rate of units (requests weighted by their cost) for one subject: a count per window and a smoothed rate. */
interface Pace {
  windowStart: number;
  count: number;
  perSecond: number;
}

const PACE_WINDOW_MS = 100;
/** Leases outlive their target by this factor before their unused units go back. */
const TTL_FACTOR = 2;

/**
 * How a batch another request was taking turned out, for the requests that waited on it:
 * its refusal and the cost it was refused at (shared with those that cost as much or
 * more: they would get the same), `retry` (units were taken: look again),
 * or `failed` (the guard gave up on the store: follow the failure policy, ask no one).
 */
export type TakeOutcome = { readonly refused: Decision; readonly cost: number } | 'retry' | 'failed';

/** Unused units going back to the store: what a lease took and did not spend. */
export interface Unused {
  readonly subject: string;
  readonly policy: LimitPolicy;
  readonly units: number;
  readonly day: number;
  readonly month: number;
}

/**
 * Token leases: a gateway takes tokens (and quota units) from the shared bucket in
 * batches and admits locally while its batch lasts, so a busy subject costs one store
 * call per batch instead of one per request. Exact by construction: every request
 * admitted from a lease spent a unit the shared store had already given out, so the
 * fleet still admits at most burst + rate x elapsed.
 *
 * Sizing: a batch is meant to last `target_ms` of this subject's traffic at this gateway
 * (its smoothed rate here), and never more than `max_share` of the burst or of a quota.
 * The store takes less near a limit: at most a tenth of what each limit has left at that
 * moment (admit.lua), so batches shrink and then stop, and the last 19 units of a bucket
 * or a quota go one request at a time, whichever edge asks. That is what lets an edge
 * that does not lease (nginx+Lua) share the limit: one gateway's batch never holds more
 * than a ninth of what the others can still take.
 * What leases cost is under-admission: units sitting in one gateway's batch while another
 * gateway is refused. They are given back, not lost, when the lease expires (twice
 * target_ms after it was taken).
 */
export class TokenLeases {
  private readonly held = new Map<string, Held>();
  /** A batch being taken for a subject: its other requests wait for it rather than each take one. */
  private readonly taking = new Map<string, Promise<TakeOutcome>>();
  private readonly pace: LRUCache<string, Pace>;
  private readonly ttlMs: number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: LeaseConfig, private readonly giveBack: (u: Unused) => void, private readonly now: () => number = Date.now) {
    this.pace = new LRUCache({ max: 10_000 });
    this.ttlMs = cfg.target_ms * TTL_FACTOR;
  }

  /** Whether requests of this policy may be admitted from leases: in-flight limits never lease. */
  static leasable(p: LimitPolicy): boolean {
    return p.maxInflight === 0 && (p.rate > 0 || p.quotaDay > 0 || p.quotaMonth > 0);
  }

  /** Gives back every expired lease's unused units on a timer (an idle subject's lease too). */
  start(): void {
    this.timer = setInterval(() => this.sweep(), this.cfg.target_ms);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.sweep(Infinity);
  }

  /**
   * A request of a leasable policy, costing `cost` units: counts it for the pace, and
   * admits it from a lease this gateway holds (the decision it answers with), or says how
   * many units to take from the store for it (`cost` or less: ask for this request alone).
   */
  use(subject: string, policy: LimitPolicy, cost: number, counted = false): { decision: Decision } | { take: number } | { wait: Promise<TakeOutcome> } {
    const now = this.now();
    const perSecond = counted ? this.pace.get(subject)?.perSecond ?? 0 : this.tick(subject, now, cost);
    const h = this.held.get(subject);
    if (h !== undefined) {
      if (h.policy === policy && now < h.expiresAt && h.left >= cost) {
        h.left -= cost;
        return { decision: fromLease(h, now) };
      }
      this.release(subject, h);
    }
    const pending = this.taking.get(subject);
    if (pending !== undefined) return { wait: pending };
    return { take: this.batch(policy, perSecond) };
  }

  /** A batch for `subject` is being taken: the subject's other requests wait for its outcome. */
  takingFor(subject: string, outcome: Promise<TakeOutcome>): void {
    this.taking.set(subject, outcome);
    void outcome.finally(() => { if (this.taking.get(subject) === outcome) this.taking.delete(subject); });
  }

  /** Keeps what a batch took beyond the request (of `cost` units) that asked for it; answers that request's decision. */
  hold(subject: string, policy: LimitPolicy, g: Grant, cost: number): Decision {
    if (g.taken <= cost) return g.decision;
    const now = this.now();
    const before = this.held.get(subject);
    if (before !== undefined) this.release(subject, before);
    const h: Held = { policy, decision: g.decision, takenAt: now, expiresAt: now + this.ttlMs, day: g.day, month: g.month, left: g.taken - cost };
    this.held.set(subject, h);
    return fromLease(h, now);
  }

  /** Units held in leases right now, for the gauge. */
  heldUnits(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.left;
    return n;
  }

  /** Near a limit the store takes less (a tenth of what is left, on its own state): this is the most to ask for. */
  private batch(p: LimitPolicy, perSecond: number): number {
    let n = Math.floor(perSecond * this.cfg.target_ms / 1000);
    if (p.rate > 0) n = Math.min(n, Math.floor(p.burst * this.cfg.max_share));
    if (p.quotaDay > 0) n = Math.min(n, Math.floor(p.quotaDay * this.cfg.max_share));
    if (p.quotaMonth > 0) n = Math.min(n, Math.floor(p.quotaMonth * this.cfg.max_share));
    return n >= 2 ? n : 1;
  }

  private tick(subject: string, now: number, units: number): number {
    let pace = this.pace.get(subject);
    if (pace === undefined) {
      pace = { windowStart: now, count: 0, perSecond: 0 };
      this.pace.set(subject, pace);
    }
    const elapsed = now - pace.windowStart;
    if (elapsed >= PACE_WINDOW_MS) {
      const sample = pace.count * 1000 / elapsed;
      // A window the subject was quiet in (or several) pulls the rate down at once.
      pace.perSecond = elapsed > 2 * PACE_WINDOW_MS ? sample : (pace.perSecond + sample) / 2;
      pace.windowStart = now;
      pace.count = 0;
    }
    pace.count += units;
    return pace.perSecond;
  }

  private sweep(until = this.now()): void {
    for (const [subject, h] of this.held) if (h.expiresAt <= until) this.release(subject, h);
  }

  private release(subject: string, h: Held): void {
    this.held.delete(subject);
    if (h.left > 0) this.giveBack({ subject, policy: h.policy, units: h.left, day: h.day, month: h.month });
  }
}

/**
 * The decision a lease answers with: the store's at the time of the batch, with this
 * gateway's unspent units counted as still there (remaining) and as not yet used (quota).
 * It does not see other gateways' leases, or refill since the batch (at most
 * rate x 2 x target_ms): that is the RateLimit header's documented error.
 */
function fromLease(h: Held, now: number): Decision {
  const d = h.decision;
  const elapsed = now - h.takenAt;
  return {
    ...d,
    remaining: d.remaining + h.left,
    fullInMs: Math.max(0, d.fullInMs - elapsed),
    dayUsed: d.dayUsed - h.left,
    monthUsed: d.monthUsed - h.left,
    dayResetMs: Math.max(0, d.dayResetMs - elapsed),
    monthResetMs: Math.max(0, d.monthResetMs - elapsed),
  };
}
