// When a queued delivery is tried again. The default is Svix's schedule, which spans
// about 27.6 hours: a receiver that is down for a night still gets its webhooks.
//   attempt 1 at once, then after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts)
// Each wait is jittered by ±JITTER so deliveries that failed together (a receiver's
// outage) do not come back together. A Retry-After from the receiver (429/503) is a
// floor for that wait (a day at most, see parseRetryAfter).

export const DEFAULT_SCHEDULE_MS: readonly number[] = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];
export const JITTER = 0.2;

/** The wait before attempt `failedAttempts + 1`, or undefined when the schedule is exhausted. */
export function retryDelayMs(
  schedule: readonly number[],
  failedAttempts: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  const step = schedule[failedAttempts - 1];
  if (step === undefined) return undefined;
  const jittered = Math.round(step * (1 - JITTER + 2 * JITTER * random()));
  return Math.max(jittered, retryAfterMs ?? 0);
}

/** Attempts a delivery gets in all: the first plus one per step. */
export function maxAttempts(schedule: readonly number[]): number {
  return schedule.length + 1;
}
