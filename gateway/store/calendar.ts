// UTC periods for quotas, computed the same way admit.lua computes them.
export const DAY_MS = 86_400_000;

export interface Periods {
  readonly day: number;
  readonly month: number;
  readonly dayResetMs: number;
  readonly monthEndMs: number;
}

export function periodsAt(nowMs: number): Periods {
  const day = Math.floor(nowMs / DAY_MS);
  const date = new Date(day * DAY_MS);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  return {
    day,
    month: y * 100 + m + 1,
    dayResetMs: (day + 1) * DAY_MS - nowMs,
    monthEndMs: Date.UTC(y, m + 1, 1),
  };
}

/**
 * The UTC day and month a store decision counted its units in, from its day_reset_ms
 * (Redis's clock): the next UTC midnight is that far away, so the local clock only has
 * to be within 12 h of Redis's.
 */
export function countedIn(dayResetMs: number, nowMs = Date.now()): { day: number; month: number } {
  const day = Math.round((nowMs + dayResetMs) / DAY_MS) - 1;
  return { day, month: periodsAt(day * DAY_MS).month };
}
