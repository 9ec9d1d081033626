import type { RetryConfig } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import type { Upstream } from '../upstream/pool-set.js';
import type { Target } from '../upstream/target.js';

export type RetryReason = 'connect' | 'reset' | `status_${number}`;

// RFC 9110 9.2.2: sending these twice has the effect of sending them once.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

/** An answer head with one of the upstream's retried statuses (default 502 and 503: the upstream, or a proxy in front of it, refused the work). */
export function statusReason(status: number, statuses: readonly number[]): RetryReason | undefined {
  return statuses.includes(status) ? `status_${status}` : undefined;
}

/**
 * The rules that keep a retry from duplicating work. `replayable`: the body can be sent
 * again (none, buffered whole, or a stream the failed attempt never read from).
 * A connect failure sent nothing, so any method may go again; after a reset or a 502/503
 * the upstream may have acted, so only idempotent methods do.
 */
export function retryAllowed(reason: RetryReason, method: string, replayable: boolean): boolean {
  if (!replayable) return false;
  return reason === 'connect' || IDEMPOTENT.has(method);
}

/**
 * Envoy's retry budget as a rate (Envoy counts concurrent retries; a rate also stops a
 * storm of quick sequential failures): over the last second, retries may not pass the
 * larger of min_per_second and budget_percent of the requests. The second is a sliding
 * window of two one-second buckets, the previous one weighted by how much of it the
 * window still covers (the rate limiter's sliding-window counter).
 */
export class RetryBudget {
  private bucket = 0;
  private requests = 0;
  private retries = 0;
  private prevRequests = 0;
  private prevRetries = 0;

  constructor(private readonly cfg: RetryConfig) {}

  request(now: number): void {
    this.roll(now);
    this.requests++;
  }

  /** True, and counted, when one more retry fits the budget. */
  take(now: number): boolean {
    this.roll(now);
    const keep = 1 - (now % 1000) / 1000;
    const requests = this.requests + this.prevRequests * keep;
    const retries = this.retries + this.prevRetries * keep;
    const allowed = Math.max(this.cfg.min_per_second, (requests * this.cfg.budget_percent) / 100);
    if (retries + 1 > allowed) return false;
    this.retries++;
    return true;
  }

  private roll(now: number): void {
    const b = Math.floor(now / 1000);
    if (b === this.bucket) return;
    const adjacent = b === this.bucket + 1;
    this.prevRequests = adjacent ? this.requests : 0;
    this.prevRetries = adjacent ? this.retries : 0;
    this.requests = 0;
    this.retries = 0;
    this.bucket = b;
  }
}

const monotonicNow = (): number => performance.now();

/**
 * One request's retries: how many are left, and which targets it already failed on (a
 * retry goes elsewhere; the same target failing twice is likelier than a fluke).
 */
export class Retrier {
  private readonly tried: Target[] = [];
  private left: number;

  constructor(
    private readonly upstream: Upstream, private readonly budget: RetryBudget, private readonly metrics: Metrics, private readonly method: string,
    private readonly now: () => number = monotonicNow,
  ) {
    this.left = upstream.cfg.retry.attempts;
    budget.request(now());
  }

  sentTo(t: Target): void {
    this.tried.push(t);
  }

  /** The target to try next after a failure with `reason`, or undefined when there is to be no retry. */
  next(reason: RetryReason, replayable: boolean): Target | undefined {
    if (this.left === 0 || !retryAllowed(reason, this.method, replayable)) return undefined;
    const now = this.now();
    const t = this.upstream.choose(now, this.tried);
    if (typeof t === 'string') return undefined;
    const name = this.upstream.cfg.name;
    if (!this.budget.take(now)) {
      this.metrics.upstreamRetriesRefused.inc({ upstream: name });
      return undefined;
    }
    this.left--;
    this.metrics.upstreamRetries.inc({ upstream: name, reason });
    return t;
  }
}
