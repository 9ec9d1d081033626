import type { FailurePolicy, StoreConfig } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import type { Store } from '../store/types.js';
import { Breaker } from './breaker.js';
import { DeadlineExceeded, withDeadline, type LateReply } from '../../common/deadline.js';
import { Fleet } from './fleet.js';

/** The store operations that decide a request. */
export type GuardedOp = 'admit' | 'limit_req' | 'limit_conn';

export type Guarded<R> =
  | { readonly source: 'store' | 'fallback'; readonly value: R }
  | { readonly source: 'closed'; readonly value: undefined };

interface Log {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A timer that ran this late says the gateway, not the store, was behind. */
const lagThresholdMs = (timeoutMs: number): number => Math.max(5, timeoutMs / 5);
/** Late replies are logged at most this often per operation (the counter has them all). */
const LATE_LOG_MS = 1000;
/** While the breaker stays open, how it is going is logged once per this many probe intervals. */
const STILL_OPEN_LOG_PROBES = 25;

/**
 * The one guard in front of every store decision (plan limits, limit_req, limit_conn):
 * a deadline that does not count time a reply waited unread (deadline.ts), a breaker
 * that opens on evidence (breaker.ts), and the fleet count that sizes the fallback's
 * share (fleet.ts). A call that fails, times out, or is skipped by the open breaker is
 * decided by the failure policy: `closed` refuses, `open` asks `fallback` with the
 * number of gateways the local decision should assume share the limit.
 */
export class StoreGuard {
  private readonly breaker: Breaker;
  readonly fleet: Fleet;
  private readonly lateLoggedAt = new Map<GuardedOp, { at: number; suppressed: number }>();
  private readonly lagThreshold: number;
  private readonly lateLoop: { readonly thresholdMs: number; readonly graceMs: number; answeredSince(t: number): boolean } | undefined;
  /** When the store last answered a call (performance.now()): the late-loop grace needs it alive. */
  private lastAnswerAt = -Infinity;
  /** While the breaker is open: probes on a timer, so a healed store is found without waiting for a request. */
  private prober: NodeJS.Timeout | undefined;

  constructor(private readonly cfg: StoreConfig, private readonly store: Store, private readonly metrics: Metrics, private readonly log: Log) {
    this.lagThreshold = lagThresholdMs(cfg.timeout_ms);
    this.lateLoop = cfg.late_grace_ms > 0
      ? { thresholdMs: this.lagThreshold, graceMs: cfg.late_grace_ms, answeredSince: (t) => this.lastAnswerAt >= t }
      : undefined;
    this.breaker = new Breaker(cfg.breaker, cfg.probe_interval_ms, (open, reason) => {
      metrics.storeBreakerOpen.set(open ? 1 : 0);
      if (open) log.error({ reason }, 'store breaker open: limits follow the failure policy');
      else log.info({ reason }, 'store breaker closed: limits enforced by the store again');
      this.probeWhileOpen(open);
    });
    this.fleet = new Fleet(store, cfg.fleet_floor, cfg.timeout_ms, (live, divisor) => {
      metrics.storeInstances.set(live);
      metrics.storeFleetDivisor.set(divisor);
    }, () => metrics.storeErrors.inc({ op: 'heartbeat', kind: 'error' }));
  }

  /**
   * `call` on the store under the deadline and the breaker. `abandon` runs when a call
   * was given up on but may still reach the store, to undo what it would take; `undo`
   * gets the answer of a call that came after the failure policy had decided, to give
   * back what it took (the request was decided without it).
   */
  run<R>(op: GuardedOp, failure: FailurePolicy, call: () => Promise<R>, fallback: (fleet: number) => R, abandon?: () => void, undo?: (late: R) => void): Guarded<R> | Promise<Guarded<R>> {
    const admission = this.breaker.admit();
    if (admission === 'skip') return this.decideLocally(failure, fallback);
    // A probe gets no grace: the breaker is open because the store, not this loop, failed.
    const lateLoop = admission === 'call' ? this.lateLoop : undefined;
    return withDeadline(call(), this.cfg.timeout_ms, `store ${op}`, {
      lateLoop,
      onLate: (late, value) => { this.lastAnswerAt = performance.now(); this.late(op, late); if (undo !== undefined) { this.metrics.storeLateUndone.inc({ op }); undo(value); } },
    }).then(
      (value): Guarded<R> => {
        this.lastAnswerAt = performance.now();
        this.breaker.record(true, admission, '');
        return { source: 'store', value };
      },
      (err: unknown) => {
        const timeout = err instanceof DeadlineExceeded;
        this.metrics.storeErrors.inc({ op, kind: timeout ? 'timeout' : 'error' });
        abandon?.();
        this.breaker.record(false, admission, (err as Error).message);
        return this.decideLocally(failure, fallback);
      },
    );
  }

  /** What the failure policy decides without the store: `closed` refuses, `open` asks `fallback` with the fleet size. */
  decideLocally<R>(failure: FailurePolicy, fallback: (fleet: number) => R): Guarded<R> {
    if (failure === 'closed') return { source: 'closed', value: undefined };
    return { source: 'fallback', value: fallback(this.fleet.divisor()) };
  }

  /**
   * The store answered, but after the deadline had handed the request to the fallback:
   * counted by cause, so an operator can tell a slow store from a busy gateway.
   */
  private late(op: GuardedOp, r: LateReply): void {
    const cause = r.lagMs > this.lagThreshold ? 'loop_lag' : 'store_slow';
    this.metrics.storeLateReplies.inc({ op, cause });
    const now = Date.now();
    const logged = this.lateLoggedAt.get(op);
    if (logged !== undefined && now - logged.at < LATE_LOG_MS) { logged.suppressed++; return; }
    this.log.warn({
      op, cause, waited_ms: Math.round(r.waitedMs), timer_lag_ms: Math.round(r.lagMs), timeout_ms: this.cfg.timeout_ms,
      suppressed: logged?.suppressed ?? 0,
    }, 'store answered after the deadline; the failure policy had decided');
    this.lateLoggedAt.set(op, { at: now, suppressed: 0 });
  }

  /**
   * An open breaker probes the store on its own, one ping per probe interval, so a heal
   * closes it even when no request comes (a quiet subject, or a gateway that only serves
   * public routes). Requests still probe too; the breaker lets one probe run at a time.
   */
  private probeWhileOpen(open: boolean): void {
    clearInterval(this.prober);
    this.prober = undefined;
    if (!open) return;
    // An operator (or a test that waits for the breaker to close) needs to know why it
    // has not: every probe failing, and how, or none getting through at all.
    const openedAt = Date.now();
    let failed = 0;
    let lastError = '';
    let ticks = 0;
    this.prober = setInterval(() => {
      if (++ticks % STILL_OPEN_LOG_PROBES === 0) {
        this.log.warn({ open_ms: Date.now() - openedAt, failed_probes: failed, last_probe_error: lastError, probe_in_flight: this.breaker.probeInFlight },
          'store breaker still open');
      }
      const admission = this.breaker.admit();
      if (admission !== 'probe') return;
      withDeadline(this.store.ping(), this.cfg.timeout_ms, 'store ping').then(
        () => this.breaker.record(true, admission, ''),
        (err: unknown) => {
          failed++;
          lastError = (err as Error).message;
          this.breaker.record(false, admission, lastError);
        },
      );
    }, this.cfg.probe_interval_ms);
    this.prober.unref();
  }

  start(): Promise<void> {
    return this.fleet.start();
  }

  stop(): void {
    this.fleet.stop();
    clearInterval(this.prober);
  }
}
