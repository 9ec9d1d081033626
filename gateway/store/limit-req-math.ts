import type { LimitReqCheck, LimitReqResult } from './types.js';

// nginx's limit_req arithmetic (ngx_http_limit_req_module.c: lookup and account), in
// its own integer units, so Sluice and nginx cannot drift by a rounding. The Redis twin
// is lua-compat/redis/limit_req.lua; the two must change together.

/** A zone's state for one key: `excess` milli-requests, `last` ms on the deciding clock. */
export interface ZoneState { excess: number; last: number }

/**
 * The excess this request would leave. A key never seen (or forgotten after it drained)
 * starts at 0, not 1000: nginx creates the node with excess 0, so a fresh key's first
 * request always passes, even with burst 0.
 */
export function excessAt(state: ZoneState | undefined, rateMilli: number, now: number): number {
  if (state === undefined) return 0;
  let ms = now - state.last;
  // nginx treats a clock step far into the past as 1 ms and a small one as none.
  if (ms < -60_000) ms = 1;
  else if (ms < 0) ms = 0;
  const excess = state.excess - Math.floor(rateMilli * ms / 1000) + 1000;
  return excess < 0 ? 0 : excess;
}

export function delayFor(excess: number, c: LimitReqCheck): number {
  return excess <= c.delayMilli ? 0 : Math.floor((excess - c.delayMilli) * 1000 / c.rateMilli);
}

/**
 * Decides one request against every zone of its route. `read` and `write` reach the
 * store; nothing is written unless every zone passes (nginx accounts the earlier zones
 * only once the last one has passed). The delay is the longest any zone asks for.
 */
export function decideLimitReq(
  checks: readonly LimitReqCheck[],
  now: number,
  read: (c: LimitReqCheck) => ZoneState | undefined,
  write: (c: LimitReqCheck, excess: number, last: number) => void,
): LimitReqResult {
  const excesses: number[] = [];
  const lasts: number[] = [];
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    const st = read(c);
    const excess = excessAt(st, c.rateMilli, now);
    if (excess > c.burstMilli) return { passed: false, zone: i, excess, delayMs: 0, at: now };
    excesses.push(excess);
    // nginx moves `last` only when its clamped ms is not 0: a clock that stepped back by
    // up to a minute keeps the later stamp.
    const raw = st === undefined ? 1 : now - st.last;
    lasts.push(raw <= 0 && raw >= -60_000 ? st!.last : now);
  }
  let zone = -1;
  let excessOut = 0;
  let delayMs = 0;
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    write(c, excesses[i]!, lasts[i]!);
    const d = delayFor(excesses[i]!, c);
    if (d > delayMs) { delayMs = d; zone = i; excessOut = excesses[i]!; }
  }
  return { passed: true, zone, excess: excessOut, delayMs, at: now };
}

/** When a key's state has drained so far that forgetting it changes nothing (its next excess is 0). */
export function drainedAt(excess: number, last: number, rateMilli: number): number {
  return last + Math.ceil((excess + 1000) * 1000 / rateMilli);
}
