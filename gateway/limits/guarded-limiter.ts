import type { FailurePolicy } from '../config/types.js';
import type { StoreGuard } from '../guard/store-guard.js';
import type { Metrics } from '../observe/metrics.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, LimitPolicy, Store } from '../store/types.js';

export type Verdict =
  | { readonly source: 'store' | 'fallback'; readonly decision: Decision }
  | { readonly source: 'closed'; readonly decision: undefined };

/**
 * Plan limits through the store guard. When the guard hands a request to the fallback,
 * `open` admits through local buckets holding this gateway's share of each limit (1 / the
 * fleet the guard counts), so a fleet failing open stays inside the plan, not N times
 * over it. The local buckets start where the store last left them: every store decision
 * seeds this subject's local state with its share of what the store reported (tokens
 * left, day and month used), so a request that falls back beside healthy ones cannot
 * spend tokens the fleet already spent.
 */
export class GuardedLimiter {
  private readonly local = new MemoryStore();

  constructor(
    private readonly store: Store,
    private readonly guard: StoreGuard,
    private readonly metrics: Metrics,
  ) {}

  /** Whether a decision costs a store round trip (the in-memory store decides in-process). */
  get remote(): boolean {
    return this.store.kind !== 'memory';
  }

  admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Verdict | Promise<Verdict> {
    if (this.store.kind === 'memory') {
      return { source: 'store', decision: (this.store as MemoryStore).admitSync(subject, policy, leaseId, leaseTtlMs) };
    }
    const started = performance.now();
    const g = this.guard.run('admit', failure,
      () => this.store.admit(subject, policy, leaseId, leaseTtlMs),
      (fleet) => this.local.admitSync(subject, shareOf(policy, fleet), leaseId, leaseTtlMs),
      // A call given up on may still run (a paused Redis works through its backlog when it
      // resumes) and take a lease nobody would release until it expires, minutes later.
      // Queue the release behind it on the same connection.
      policy.maxInflight > 0 ? () => this.release(subject, leaseId, 'store') : undefined);
    if (!(g instanceof Promise)) return { source: g.source, decision: g.value } as Verdict;
    return g.then((r) => {
      const seconds = (performance.now() - started) / 1000;
      if (r.source === 'store') {
        this.metrics.storeAdmitted(seconds);
        this.local.seedSync(subject, r.value, this.guard.fleet.divisor());
      } else {
        this.metrics.decisionWait.observe({ source: r.source }, seconds);
      }
      return { source: r.source, decision: r.value } as Verdict;
    });
  }

  /** Release goes where the lease came from. */
  release(subject: string, leaseId: string, source: Verdict['source']): void {
    if (source === 'fallback' || this.store.kind === 'memory') {
      (source === 'fallback' ? this.local : (this.store as MemoryStore)).releaseSync(subject, leaseId);
      return;
    }
    this.store.release(subject, leaseId).catch(() => this.metrics.storeErrors.inc({ op: 'release', kind: 'error' }));
  }
}

/** One gateway's part of a limit when `n` share it; never below one unit, or a small plan on a big fleet would refuse everything. */
export function sharePart(v: number, n: number): number {
  return v > 0 ? Math.max(1, Math.floor(v / n)) : 0;
}

/**
 * One gateway's part of a policy when `n` share it. For burst, quotas and in-flight the
 * one-unit floor means a fleet may admit up to n where the plan says fewer.
 */
export function shareOf(p: LimitPolicy, n: number): LimitPolicy {
  if (n <= 1) return p;
  return {
    rate: p.rate / n,
    burst: p.rate > 0 ? Math.max(1, p.burst / n) : p.burst,
    quotaDay: sharePart(p.quotaDay, n),
    quotaMonth: sharePart(p.quotaMonth, n),
    maxInflight: sharePart(p.maxInflight, n),
  };
}
