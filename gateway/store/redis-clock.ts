/** This process's monotonic clock in ms, on the wall-clock scale (never steps back with NTP). */
export const monotonicMs = (): number => performance.timeOrigin + performance.now();

/** Samples kept: the one with the shortest round trip wins, as in NTP's clock filter. */
const KEEP = 8;

interface Sample { readonly rttMs: number; readonly offsetMs: number }

/**
 * The offset from this process's clock to Redis's (`TIME`), so a store call can carry
 * the moment its deadline gives up on it in Redis's own clock (admit.lua's expires_at).
 * Each sample is one TIME round trip; Redis read its clock somewhere inside it, so the
 * offset taken at the midpoint is wrong by at most half the round trip. The shortest of
 * the last few round trips is trusted: a sample taken while the loop or the link was
 * slow is the least accurate.
 */
export class RedisClock {
  private readonly samples: Sample[] = [];
  private best: Sample | undefined;

  constructor(private readonly now: () => number = monotonicMs) {}

  /** One TIME round trip: sent and received on this clock, Redis's reading in ms. */
  sample(sentMs: number, receivedMs: number, redisMs: number): void {
    const s = { rttMs: receivedMs - sentMs, offsetMs: redisMs - (sentMs + receivedMs) / 2 };
    this.samples.push(s);
    if (this.samples.length > KEEP) this.samples.shift();
    this.best = this.samples.reduce((a, b) => (b.rttMs < a.rttMs ? b : a));
  }

  /** Redis's clock `inMs` from now, or 0 (no expiry) before the first sample. */
  redisTimeIn(inMs: number): number {
    if (this.best === undefined) return 0;
    return Math.ceil(this.now() + this.best.offsetMs + this.best.rttMs / 2 + inMs);
  }

  /** How far off the offset may be, ms (half the trusted sample's round trip). */
  get errorMs(): number {
    return this.best === undefined ? Infinity : this.best.rttMs / 2;
  }
}
