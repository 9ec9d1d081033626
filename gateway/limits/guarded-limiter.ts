import type { FailurePolicy } from '../config/types.js';
import type { LeaseConfig } from '../config/types.js';
import type { Guarded, StoreGuard } from '../guard/store-guard.js';
import type { Metrics } from '../observe/metrics.js';
import { countedIn } from '../store/calendar.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, LimitPolicy, Store } from '../store/types.js';
import { TokenLeases, type TakeOutcome } from './token-leases.js';

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
  /** Token leases (token-leases.ts) on a shared store, when store.lease.enabled. */
  private readonly leases: TokenLeases | undefined;

  constructor(
    private readonly store: Store,
    private readonly guard: StoreGuard,
    private readonly metrics: Metrics,
    lease: LeaseConfig,
  ) {
    if (store.kind === 'memory' || !lease.enabled) return;
    this.leases = new TokenLeases(lease, (u) => {
      metrics.leaseReturned.inc(u.units);
      store.giveBack(u.subject, u.policy, u.units, u.day, u.month).catch(() => metrics.storeErrors.inc({ op: 'lease_return', kind: 'error' }));
    });
    this.leases.start();
    metrics.watchLeases(() => this.leases!.heldUnits());
  }

  /** Gives back what the leases hold (a reload or shutdown retires this limiter). */
  stop(): void {
    this.leases?.stop();
  }

  /** Whether a decision costs a store round trip (the in-memory store decides in-process). */
  get remote(): boolean {
    return this.store.kind !== 'memory';
  }

  /** `cost`: the units the request takes from the bucket and each quota. */
  admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy, cost = 1, waited = false): Verdict | Promise<Verdict> {
    if (this.store.kind === 'memory') {
      return { source: 'store', decision: (this.store as MemoryStore).admitSync(subject, policy, leaseId, leaseTtlMs, cost) };
    }
    const started = performance.now();
    if (this.leases !== undefined && TokenLeases.leasable(policy)) {
      const lease = this.leases.use(subject, policy, cost, waited);
      if ('decision' in lease) {
        this.metrics.leaseHits.inc();
        return { source: 'store', decision: lease.decision };
      }
      if ('wait' in lease) {
        // Another request of this subject is taking a batch: use it, share its refusal, or
        // follow the failure policy with it (never a second wait on a store that failed).
        return lease.wait.then((o): Verdict | Promise<Verdict> => {
          if (o === 'retry') return this.admit(subject, policy, leaseId, leaseTtlMs, failure, cost, true);
          // A refusal of a batch taker is this request's too only when it costs no less.
          if (o !== 'failed') return o.cost <= cost ? { source: 'store', decision: o.refused } : this.admit(subject, policy, leaseId, leaseTtlMs, failure, cost, true);
          return verdictOf(this.guard.decideLocally(failure, (fleet) => this.local.admitSync(subject, shareOf(policy, fleet), leaseId, leaseTtlMs, cost)));
        });
      }
      if (lease.take > cost) return this.takeBatch(subject, policy, lease.take, leaseId, leaseTtlMs, failure, started, cost);
    }
    return this.decided(subject, started, this.guard.run('admit', failure,
      () => this.store.admit(subject, policy, leaseId, leaseTtlMs, cost),
      (fleet) => this.local.admitSync(subject, shareOf(policy, fleet), leaseId, leaseTtlMs, cost),
      // A call given up on may still run (a paused Redis works through its backlog when it
      // resumes) and take a lease nobody would release until it expires, minutes later.
      // Queue the release behind it on the same connection.
      policy.maxInflight > 0 ? () => this.release(subject, leaseId, 'store') : undefined,
      // A late answer that admitted took units for a request the failure policy decided: give them back.
      (d) => { if (d.allowed) this.giveBack(subject, policy, cost, d); }));
  }

  /** Gives `units` back to the store, in the day and month `d` counted them in. */
  private giveBack(subject: string, policy: LimitPolicy, units: number, d: Decision): void {
    const { day, month } = countedIn(d.dayResetMs);
    this.store.giveBack(subject, policy, units, day, month).catch(() => this.metrics.storeErrors.inc({ op: 'late_return', kind: 'error' }));
  }

  /** One store call for a batch of `n` units; the subject's other requests wait for it (TokenLeases.use). */
  private takeBatch(subject: string, policy: LimitPolicy, n: number, leaseId: string, leaseTtlMs: number, failure: FailurePolicy, started: number, cost: number): Verdict | Promise<Verdict> {
    const leases = this.leases!;
    const g = this.guard.run('admit', failure,
      () => this.store.take(subject, policy, n, cost).then((grant) => {
        if (grant.taken > cost) this.metrics.leaseGrants.inc();
        return leases.hold(subject, policy, grant, cost);
      }),
      (fleet) => this.local.admitSync(subject, shareOf(policy, fleet), leaseId, leaseTtlMs, cost),
      undefined,
      // A late batch is held as a lease all the same (its units serve later requests); the
      // units it took for this request, which the failure policy decided, go back.
      (d) => { if (d.allowed) this.giveBack(subject, policy, cost, d); });
    // The waiters hear what the guard decided, so none waits longer than this request did.
    leases.takingFor(subject, Promise.resolve(g).then((r): TakeOutcome => {
      if (r.source !== 'store') return 'failed';
      return r.value.allowed ? 'retry' : { refused: r.value, cost };
    }));
    return this.decided(subject, started, g);
  }

  private decided(subject: string, started: number, g: Guarded<Decision> | Promise<Guarded<Decision>>): Verdict | Promise<Verdict> {
    if (!(g instanceof Promise)) return verdictOf(g);
    return g.then((r) => {
      const seconds = (performance.now() - started) / 1000;
      if (r.source === 'store') {
        this.metrics.storeAdmitted(seconds);
        this.local.seedSync(subject, r.value, this.guard.fleet.divisor());
      } else {
        this.metrics.decisionWait.observe({ source: r.source }, seconds);
      }
      return verdictOf(r);
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

function verdictOf(g: Guarded<Decision>): Verdict {
  return { source: g.source, decision: g.value } as Verdict;
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
