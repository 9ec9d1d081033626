import { randomBytes } from 'node:crypto';
import type { FailurePolicy } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, LimitPolicy, Store } from '../store/types.js';

export type Verdict =
  | { readonly source: 'store' | 'fallback'; readonly decision: Decision }
  | { readonly source: 'closed'; readonly decision: undefined };

class StoreTimeout extends Error {}

/** How often a busy gateway tells the shared store it is alive; 3 missed beats and it no longer counts. */
const HEARTBEAT_MS = 1000;

/**
 * Puts a deadline on every store decision and a breaker in front of the store.
 * A call slower than timeout_ms, or any call while the breaker is open, is decided
 * by the failure policy: `open` admits through local buckets, `closed` refuses.
 * The local buckets get this gateway's share of each limit (1 / the gateways that were
 * alive at the last heartbeat), so a fleet failing open stays near the plan, not N
 * times over it. While open, one probe per probe_interval_ms goes to the store; its
 * success closes the breaker, so enforcement resumes within an interval of the store
 * coming back.
 */
export class GuardedLimiter {
  private readonly local = new MemoryStore();
  private breakerOpen = false;
  private probing = false;
  private nextProbeAt = 0;
  private readonly instanceId = randomBytes(8).toString('hex');
  /** Gateways sharing the store, this one included, as of the last heartbeat. */
  private instances = 1;
  private nextHeartbeatAt = 0;

  constructor(
    private readonly store: Store,
    private readonly timeoutMs: number,
    private readonly probeIntervalMs: number,
    private readonly metrics: Metrics,
    private readonly onStateChange: (open: boolean, reason: string) => void,
  ) {}

  /** Whether a decision costs a store round trip (the in-memory store decides in-process). */
  get remote(): boolean {
    return this.store.kind !== 'memory';
  }

  admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Verdict | Promise<Verdict> {
    if (this.store.kind === 'memory') {
      return { source: 'store', decision: (this.store as MemoryStore).admitSync(subject, policy, leaseId, leaseTtlMs) };
    }
    const now = Date.now();
    if (this.breakerOpen) {
      if (this.probing || now < this.nextProbeAt) return this.fallback(subject, policy, leaseId, leaseTtlMs, failure);
      this.probing = true;
      this.nextProbeAt = now + this.probeIntervalMs;
    } else if (now >= this.nextHeartbeatAt) {
      this.heartbeat(now);
    }
    return this.callStore(subject, policy, leaseId, leaseTtlMs, failure);
  }

  // Beats ride on traffic (no timer to stop): an idle gateway drops out of the count,
  // which is right, since it takes no share of anyone's limits.
  private heartbeat(now: number): void {
    if (this.store.heartbeat === undefined) return;
    this.nextHeartbeatAt = now + HEARTBEAT_MS;
    this.store.heartbeat(this.instanceId, HEARTBEAT_MS * 3).then(
      (n) => { this.instances = Math.max(1, n); this.metrics.storeInstances.set(this.instances); },
      () => this.metrics.storeErrors.inc({ op: 'heartbeat', kind: 'error' }),
    );
  }

  /** Release goes where the lease came from. */
  release(subject: string, leaseId: string, source: Verdict['source']): void {
    if (source === 'fallback' || this.store.kind === 'memory') {
      (source === 'fallback' ? this.local : (this.store as MemoryStore)).releaseSync(subject, leaseId);
      return;
    }
    this.store.release(subject, leaseId).catch(() => this.metrics.storeErrors.inc({ op: 'release', kind: 'error' }));
  }

  private async callStore(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Promise<Verdict> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const decision = await Promise.race([
        this.store.admit(subject, policy, leaseId, leaseTtlMs),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new StoreTimeout()), this.timeoutMs); }),
      ]);
      this.metrics.storeAdmitted((performance.now() - started) / 1000);
      if (this.breakerOpen) this.setBreaker(false, 'probe succeeded');
      return { source: 'store', decision };
    } catch (err) {
      const kind = err instanceof StoreTimeout ? 'timeout' : 'error';
      this.metrics.storeErrors.inc({ op: 'admit', kind });
      // A call we gave up on may still run (a paused Redis works through its backlog
      // when it resumes) and take a lease that nobody would release until it expires,
      // minutes later. Queue the release behind it on the same connection.
      if (policy.maxInflight > 0) {
        this.store.release(subject, leaseId).catch(() => this.metrics.storeErrors.inc({ op: 'release', kind: 'error' }));
      }
      if (!this.breakerOpen) {
        this.nextProbeAt = Date.now() + this.probeIntervalMs;
        this.setBreaker(true, kind === 'timeout' ? `store call exceeded ${this.timeoutMs} ms` : (err as Error).message);
      }
      const verdict = this.fallback(subject, policy, leaseId, leaseTtlMs, failure);
      this.metrics.decisionWait.observe({ source: verdict.source }, (performance.now() - started) / 1000);
      return verdict;
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }

  private fallback(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Verdict {
    if (failure === 'closed') return { source: 'closed', decision: undefined };
    return { source: 'fallback', decision: this.local.admitSync(subject, shareOf(policy, this.instances), leaseId, leaseTtlMs) };
  }

  private setBreaker(open: boolean, reason: string): void {
    this.breakerOpen = open;
    this.metrics.storeBreakerOpen.set(open ? 1 : 0);
    this.onStateChange(open, reason);
  }
}

/**
 * One gateway's part of a policy when `n` share it. A limit never drops below one unit,
 * or a small plan on a big fleet would refuse everything: for burst, quotas and
 * in-flight the fleet may then admit up to n where the plan says fewer.
 */
export function shareOf(p: LimitPolicy, n: number): LimitPolicy {
  if (n <= 1) return p;
  const part = (v: number): number => (v > 0 ? Math.max(1, Math.floor(v / n)) : 0);
  return {
    rate: p.rate / n,
    burst: p.rate > 0 ? Math.max(1, p.burst / n) : p.burst,
    quotaDay: part(p.quotaDay),
    quotaMonth: part(p.quotaMonth),
    maxInflight: part(p.maxInflight),
  };
}
