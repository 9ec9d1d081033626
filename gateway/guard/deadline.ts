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

/** A deadline timer that ran later than this says the loop was held: look at the sockets once more before deciding. */
export const RECHECK_AFTER_LAG_MS = 2;

/**
 * The one deadline on store calls. A timer alone is not enough: when this process's
 * event loop stalls (a burst of connections, a GC, a busy core), the overdue timer runs
 * in the timers phase, before the poll phase has read a reply that may have been sitting
 * in the socket all along. So a timer that ran late only schedules the verdict with
 * setImmediate, which runs after the next poll phase: a reply already received is read
 * first and wins. A timer on time means the loop turned moments ago and read whatever
 * had arrived, so it decides at once. A store that really did not answer (dead,
 * SIGSTOPped, slow) loses at the deadline, or one loop turn after it when the loop was
 * behind anyway. onLate hears of calls that answered after losing.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, onLate?: (late: LateReply) => void): Promise<T> {
  const started = performance.now();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let lagMs = 0;
    const expire = (): void => {
      if (settled) return;
      settled = true;
      reject(new DeadlineExceeded(what, ms, lagMs));
    };
    const timer = setTimeout(() => {
      lagMs = Math.max(0, performance.now() - started - ms);
      if (lagMs > RECHECK_AFTER_LAG_MS) setImmediate(expire);
      else expire();
    }, ms);
    p.then((v) => {
      if (settled) { onLate?.({ waitedMs: performance.now() - started, lagMs }); return; }
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
