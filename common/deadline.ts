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

/**
 * The one deadline on store calls. A timer alone is not enough: when this process's
 * event loop stalls (a burst of connections, a GC, a busy core), the overdue timer runs
 * in the timers phase, before the poll phase has read a reply that may have been sitting
 * in the socket all along. So the timer only schedules the verdict with setImmediate,
 * which runs after the next poll phase: a reply already received is read first and wins
 * (even one that arrived while a long poll phase was still running other callbacks, just
 * before the timer was due). A store that really did not answer (dead, SIGSTOPped, slow)
 * loses one loop turn after the deadline. onLate hears of calls that answered after losing.
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
      setImmediate(expire);
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
