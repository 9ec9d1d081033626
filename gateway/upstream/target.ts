import type { Pool } from 'undici';
import type { TargetConfig, UpstreamConfig } from '../config/types.js';

/** What the balancers need to know of a target's health; implemented by Outlier. */
export interface OutcomeSink {
  outcome(target: Target, ok: boolean, now: number): void;
}

// A backend's X-Backend-Load is a snapshot taken when it answered; after this long it
// says more about the past than about now, and only our own count is used.
const ADVERTISED_TTL_MS = 1000;
// Finagle's trick: a target with requests out and no latency sample yet is priced out of
// the race, so a newcomer (or one just back from ejection) gets one request at a time
// until its first answer tells us what it costs, instead of a burst at cost zero.
const UNMEASURED_PENALTY = 1e9;
const LOAD = /inflight=(\d+);\s*queued=(\d+);\s*capacity=(\d+)/;

/**
 * One backend origin: its own keep-alive pool (undici `Pool`), and the state the
 * balancers and the health checks share: requests outstanding, peak-EWMA latency,
 * the load it last advertised, whether it is up.
 */
export class Target {
  readonly origin: string;
  readonly weight: number;
  readonly backup: boolean;
  /** Requests sent through this gateway and not finished yet. */
  outstanding = 0;
  /** False after the active check failed unhealthy_threshold times in a row. */
  activeUp = true;
  /** performance.now() until which passive outlier detection keeps it out. */
  ejectedUntil = 0;
  /** Ejections in the current run of trouble; each one lasts longer (reset once it behaves). */
  ejections = 0;
  lastEjectionMs = 0;
  consecutiveFailures = 0;

  private ewmaMs = 0;
  private ewmaAt = 0;
  private sampled = false;
  private advertised = 0;
  private saturated = false;
  private advertisedAt = -Infinity;

  constructor(
    readonly cfg: TargetConfig,
    readonly upstream: UpstreamConfig,
    readonly pool: Pool,
    private readonly sink: OutcomeSink,
  ) {
    this.origin = cfg.url;
    this.weight = cfg.weight;
    this.backup = cfg.backup;
  }

  available(now: number): boolean {
    return this.activeUp && now >= this.ejectedUntil;
  }

  /**
   * Circuit breaking (Envoy's per-host max_requests / max_pending_requests): false while
   * this target is at its in-flight or connection-queue limit, so the request goes
   * elsewhere or is refused at once instead of queueing behind a saturated backend.
   */
  admits(): boolean {
    const c = this.upstream.circuit;
    if (c.max_inflight > 0 && this.outstanding >= c.max_inflight) return false;
    return c.max_pending === 0 || this.pool.stats.pending < c.max_pending;
  }

  /**
   * Requests in the backend as far as we can tell: our own outstanding count, or what the
   * backend last advertised (inflight + queued, which includes other gateways' requests)
   * while that is fresh; the larger, because the snapshot already counts ours.
   */
  load(now: number): number {
    if (now - this.advertisedAt > ADVERTISED_TTL_MS) return this.outstanding;
    return Math.max(this.outstanding, this.advertised);
  }

  /**
   * Peak EWMA (Finagle, Envoy's LEAST_REQUEST with active-request bias): a sample above the
   * average replaces it at once (react to a slowdown on the first slow answer), one below
   * pulls it down with weight 1 - e^(-Δt/τ). Read here, it also decays toward zero with
   * the time since the last sample, so a target everyone avoids is tried again.
   */
  latency(now: number): number {
    if (!this.sampled) return 0;
    return this.ewmaMs * Math.exp(-(now - this.ewmaAt) / this.upstream.ewma_decay_ms);
  }

  /** p2c_ewma's price: latency × (load + 1), per unit of weight. */
  cost(now: number): number {
    const load = this.load(now);
    if (!this.sampled) return load === 0 ? 0 : UNMEASURED_PENALTY + load;
    const c = (this.latency(now) * (load + 1)) / this.weight;
    // A backend whose queue was full answers 503 at once; price it out while that is news.
    return this.saturated && now - this.advertisedAt <= ADVERTISED_TTL_MS ? c + UNMEASURED_PENALTY : c;
  }

  observeLatency(ms: number, now: number): void {
    const current = this.latency(now);
    if (!this.sampled || ms > current) {
      this.ewmaMs = ms;
    } else {
      const w = Math.exp(-(now - this.ewmaAt) / this.upstream.ewma_decay_ms);
      this.ewmaMs = current * w + ms * (1 - w);
    }
    this.sampled = true;
    this.ewmaAt = now;
  }

  /** `X-Backend-Load: inflight=<n>; queued=<m>; capacity=<c>` as the image backends send it. */
  observeLoad(header: string, now: number): void {
    const m = LOAD.exec(header);
    if (m === null) return;
    this.advertised = Number(m[1]) + Number(m[2]);
    this.saturated = this.advertised >= Number(m[3]);
    this.advertisedAt = now;
  }

  /** Forget the latency history: after an outage the old figure says nothing. */
  resetLatency(): void {
    this.sampled = false;
  }

  /** One request on its way to this target; the proxy reports how it went. */
  begin(): Attempt {
    return new Attempt(this, this.sink);
  }
}

/**
 * One proxied request as the balancer sees it. `responded` when the response head
 * arrives (the latency sample: image work happens before the head), `end` when the
 * exchange is over, with `failed` for an upstream fault that produced no response.
 */
export class Attempt {
  private readonly started = performance.now();
  private open = true;
  private answered = false;

  constructor(private readonly target: Target, private readonly sink: OutcomeSink) {
    target.outstanding++;
  }

  responded(status: number, loadHeader: string | string[] | undefined): void {
    const now = performance.now();
    this.answered = true;
    if (typeof loadHeader === 'string') this.target.observeLoad(loadHeader, now);
    const ok = status < 500;
    this.sample(ok, now);
    // Latency counts every 5xx as slow; ejection counts it only when the upstream says so.
    this.sink.outcome(this.target, ok || !this.target.upstream.outlier.count_5xx, now);
  }

  end(failed = false): void {
    if (!this.open) return;
    this.open = false;
    this.target.outstanding--;
    if (failed && !this.answered) {
      const now = performance.now();
      this.sample(false, now);
      this.sink.outcome(this.target, false, now);
    }
  }

  // A refused connection or a 503 comes back fast; counted at face value it would make
  // the failing target the cheapest one. A failure at least doubles its latency instead.
  private sample(ok: boolean, now: number): void {
    const ms = now - this.started;
    this.target.observeLatency(ok ? ms : Math.max(ms, 2 * this.target.latency(now), 1), now);
  }
}
