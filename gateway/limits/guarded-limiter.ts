import type { FailurePolicy } from '../config/types.js';
import type { Metrics } from '../observe/metrics.js';
import { MemoryStore } from '../store/memory-store.js';
import type { Decision, LimitPolicy, Store } from '../store/types.js';

export type Verdict =
  | { readonly source: 'store' | 'fallback'; readonly decision: Decision }
  | { readonly source: 'closed'; readonly decision: undefined };

class StoreTimeout extends Error {}

/**
 * Puts a deadline on every store decision and a breaker in front of the store.
 * A call slower than timeout_ms, or any call while the breaker is open, is decided
 * by the failure policy: `open` admits through local buckets, `closed` refuses.
 * While open, one probe per probe_interval_ms goes to the store; its success closes
 * the breaker, so enforcement resumes within an interval of the store coming back.
 */
export class GuardedLimiter {
  private readonly local = new MemoryStore();
  private breakerOpen = false;
  private probing = false;
  private nextProbeAt = 0;

  constructor(
    private readonly store: Store,
    private readonly timeoutMs: number,
    private readonly probeIntervalMs: number,
    private readonly metrics: Metrics,
    private readonly onStateChange: (open: boolean, reason: string) => void,
  ) {}

  admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Verdict | Promise<Verdict> {
    if (this.store.kind === 'memory') {
      return { source: 'store', decision: (this.store as MemoryStore).admitSync(subject, policy, leaseId, leaseTtlMs) };
    }
    if (this.breakerOpen) {
      const now = Date.now();
      if (this.probing || now < this.nextProbeAt) return this.fallback(subject, policy, leaseId, leaseTtlMs, failure);
      this.probing = true;
      this.nextProbeAt = now + this.probeIntervalMs;
    }
    return this.callStore(subject, policy, leaseId, leaseTtlMs, failure);
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
      this.metrics.storeDuration.observe({ op: 'admit' }, (performance.now() - started) / 1000);
      if (this.breakerOpen) this.setBreaker(false, 'probe succeeded');
      return { source: 'store', decision };
    } catch (err) {
      const kind = err instanceof StoreTimeout ? 'timeout' : 'error';
      this.metrics.storeErrors.inc({ op: 'admit', kind });
      if (!this.breakerOpen) {
        this.nextProbeAt = Date.now() + this.probeIntervalMs;
        this.setBreaker(true, kind === 'timeout' ? `store call exceeded ${this.timeoutMs} ms` : (err as Error).message);
      }
      return this.fallback(subject, policy, leaseId, leaseTtlMs, failure);
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }

  private fallback(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, failure: FailurePolicy): Verdict {
    if (failure === 'closed') return { source: 'closed', decision: undefined };
    return { source: 'fallback', decision: this.local.admitSync(subject, policy, leaseId, leaseTtlMs) };
  }

  private setBreaker(open: boolean, reason: string): void {
    this.breakerOpen = open;
    this.metrics.storeBreakerOpen.set(open ? 1 : 0);
    this.onStateChange(open, reason);
  }
}
