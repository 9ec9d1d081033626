/** A store call that had not answered when its deadline was checked. */
export class DeadlineExceeded extends Error {
  constructor(what: string, readonly ms: number, readonly lagMs: number) {
    super(`${what} exceeded ${ms} ms`);
  }
}

/** What became of a call the deadline had already given up on. */
export interface LateReply {
  /** From the call to its answer. */
  readonly waitedMs: number;
  /** How late this process's own deadline timer ran. */
  readonly lagMs: number;
}

export interface DeadlineOptions<T> {
  /** Hears of calls that answered after losing, with their value (to count them, or undo what they took). */
  readonly onLate?: (late: LateReply, value: T) => void;
  /**
   * When the deadline timer itself ran more than thresholdMs late, and the store has
   * answered other calls since this one was made (answeredSince: it is alive, and this
   * process's event loop was behind), the call gets up to graceMs more past its deadline
   * before it loses. A stopped or cut store answers nothing, so it gets no grace.
   */
  readonly lateLoop?: { readonly thresholdMs: number; readonly graceMs: number; answeredSince(startedMs: number): boolean };
  /** The clock lateness is measured on (performance.now; a test injects its own). */
  readonly now?: () => number;
}

const monotonicNow = (): number => performance.now();

/**
 * The one deadline on store calls. A timer alone is not enough: when this process's
 * event loop stalls (a burst of connections, a GC, a busy core), the overdue timer runs
 * in the timers phase, before the poll phase has read a reply that may have been sitting
 * in the socket all along. So the timer only schedules the verdict with setImmediate,
 * which runs after the next poll phase: a reply already received is read first and wins
 * (even one that arrived while a long poll phase was still running other callbacks, just
 * before the timer was due). A store that really did not answer (dead, SIGSTOPped, slow)
 * loses one loop turn after the deadline; a store that is alive behind a late loop
 * (lateLoop) gets a bounded grace.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, o: DeadlineOptions<T> = {}): Promise<T> {
  const now = o.now ?? monotonicNow;
  const started = now();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let lagMs = 0;
    const expire = (): void => {
      if (settled) return;
      settled = true;
      reject(new DeadlineExceeded(what, ms, lagMs));
    };
    // Runs after the poll phase that follows a late timer, so replies that were waiting
    // have been read: whether the store answered others since this call is known.
    const judge = (): void => {
      const g = o.lateLoop!;
      const elapsed = now() - started;
      if (!settled && g.answeredSince(started) && elapsed < ms + g.graceMs) timer = setTimeout(expire, ms + g.graceMs - elapsed);
      else expire();
    };
    const due = (): void => {
      // libuv times a timer from the loop's cached clock, read before this call began, so
      // it can fire up to a millisecond before `ms` have passed on ours: no call loses early.
      const early = started + ms - now();
      if (early > 0) {
        timer = setTimeout(due, early);
        return;
      }
      lagMs = Math.max(0, now() - started - ms);
      const late = o.lateLoop !== undefined && lagMs > o.lateLoop.thresholdMs;
      setImmediate(late ? judge : expire);
    };
    let timer = setTimeout(due, ms);
    p.then((v) => {
      if (settled) { o.onLate?.({ waitedMs: now() - started, lagMs }, v); return; }
      settled = true;
      clearTimeout(timer);
      resolve(v);
    }, (err: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
  });
}
