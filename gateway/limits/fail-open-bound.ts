/**
 * The fail-open bound: over `faultS` seconds, `k` gateway processes deciding alone, each
 * with divisor `d` (its counted fleet), admit at most k x (max(1, burst/d) + rate x
 * faultS / d) beyond what the store admits; +1 per process for a request in flight at
 * either edge of the fault. docs/faults.md states it per fault; the fault harness and
 * the busy-host test judge by it.
 */
export function failOpenBound(p: { readonly rate: number; readonly burst: number }, k: number, d: number, faultS: number): number {
  return k * (Math.max(1, p.burst / d) + p.rate * faultS / d + 1);
}
