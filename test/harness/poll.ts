/**
 * Calls `probe` until it returns a value other than undefined or `deadlineMs` passes,
 * pausing `intervalMs` between attempts. For state that changes without an event the
 * test could await (a cache expiring, another process noticing a message).
 */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  deadlineMs: number,
  intervalMs = 20,
): Promise<{ value: T; elapsedMs: number } | { value: undefined; elapsedMs: number }> {
  const started = performance.now();
  const deadline = started + deadlineMs;
  for (;;) {
    const value = await probe();
    const now = performance.now();
    if (value !== undefined) return { value, elapsedMs: now - started };
    if (now >= deadline) return { value: undefined, elapsedMs: now - started };
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(1, deadline - now))));
  }
}
