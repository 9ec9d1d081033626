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

/** yyyy-mm-dd of a UTC day number. */
export function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** The UTC day number of a yyyy-mm-dd date, or undefined when it is not a real date. */
export function dayOf(date: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return undefined;
  const ms = Date.parse(`${date}T00:00:00Z`);
  if (!Number.isFinite(ms) || isoDate(ms / DAY_MS) !== date) return undefined;
  return ms / DAY_MS;
}
