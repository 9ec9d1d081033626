import { LRUCache } from 'lru-cache';
import type { Decision, DenyReason, LimitPolicy } from '../store/types.js';
import type { Verdict } from './guarded-limiter.js';

/** A verdict, or a denial this process already knew without asking the store. */
export type CachedVerdict = Verdict | { readonly source: 'cache'; readonly decision: Decision };

interface Entry {
  /** The policy the denial was decided under: an admin change builds a new identity, and the entry no longer applies. */
  readonly policy: LimitPolicy;
  readonly at: number;
  readonly until: number;
  readonly decision: Decision;
}

/** How many probes one request follows before it asks the store itself. */
const MAX_PROBE_WAITS = 4;

/**
 * Remembers, per subject, a denial that no gateway's traffic can lift before a known
 * time, so an abusive client is refused without a store round trip until then.
 *
 * Why it stays exact: a denial consumes nothing, and other gateways can only take
 * tokens and quota, never give them back. So "no token until t" and "quota used up
 * until the period ends" remain true whatever the fleet does meanwhile. In-flight
 * denials are never remembered: any of the subject's requests ending, on any gateway,
 * frees a slot at a moment nobody can predict.
 *
 * An admitted request that left the bucket empty (or a quota used up) proves the same
 * thing about the next request, so it is remembered as the denial the store would give:
 * that makes it one store call per token returned rather than two.
 *
 * When an entry expires, one request (the probe) asks the store; requests of the same
 * subject arriving meanwhile wait for its answer instead of racing it to the store,
 * which for a client with N requests in flight would be N calls per window.
 */
export class DenyCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly probes = new Map<string, Promise<void>>();

  constructor(maxSubjects = 10_000, private readonly now: () => number = Date.now) {
    this.entries = new LRUCache({ max: maxSubjects });
  }

  decide(subject: string, policy: LimitPolicy, maxMs: number, call: () => Verdict | Promise<Verdict>, waits = 0): CachedVerdict | Promise<CachedVerdict> {
    if (maxMs <= 0) return call();
    const e = this.entries.get(subject);
    if (e === undefined || e.policy !== policy) return this.learnFrom(subject, policy, maxMs, call);
    const now = this.now();
    if (now < e.until) return { source: 'cache', decision: retimed(e, now) };
    const probe = this.probes.get(subject);
    // The probe's own denial may be over before its answer is read (an entry is timed from
    // before the call, so it ends early by the call's latency): the waiters then follow the
    // next probe rather than all asking the store at once. A few waits at most, then the store.
    if (probe !== undefined && waits < MAX_PROBE_WAITS) return probe.then(() => this.decide(subject, policy, maxMs, call, waits + 1));
    const v = this.learnFrom(subject, policy, maxMs, call);
    if (v instanceof Promise && probe === undefined) {
      const done = v.then(() => undefined, () => undefined).finally(() => this.probes.delete(subject));
      this.probes.set(subject, done);
    }
    return v;
  }

  private learnFrom(subject: string, policy: LimitPolicy, maxMs: number, call: () => Verdict | Promise<Verdict>): Verdict | Promise<Verdict> {
    // The store decided after this instant, so timing the entry from here can only end it early, never late.
    const at = this.now();
    const v = call();
    if (v instanceof Promise) return v.then((res) => { this.learn(subject, policy, maxMs, res, at); return res; });
    this.learn(subject, policy, maxMs, v, at);
    return v;
  }

  private learn(subject: string, policy: LimitPolicy, maxMs: number, v: Verdict, at: number): void {
    // Fallback buckets are this process's guess, not the fleet's state.
    const denial = v.source === 'store' ? denialAhead(policy, v.decision) : undefined;
    if (denial === undefined || denial.retryAfterMs <= 0) {
      this.entries.delete(subject);
      return;
    }
    this.entries.set(subject, { policy, at, until: at + Math.min(maxMs, denial.retryAfterMs), decision: denial });
  }
}

/** The denial in force after decision d, or that the next request would certainly get. */
export function denialAhead(p: LimitPolicy, d: Decision): Decision | undefined {
  if (!d.allowed) return d.reason === 'rate_limited' || d.reason === 'quota_exceeded' ? d : undefined;
  // The store's own order of checks, in-flight aside (see the class comment).
  const deny = (reason: DenyReason, retryAfterMs: number): Decision => ({ ...d, allowed: false, reason, retryAfterMs });
  if (p.quotaDay > 0 && d.dayUsed >= p.quotaDay) return deny('quota_exceeded', d.dayResetMs);
  if (p.quotaMonth > 0 && d.monthUsed >= p.quotaMonth) return deny('quota_exceeded', d.monthResetMs);
  // Fewer than one token left: the next comes when the bucket is (burst - 1) tokens from full.
  if (p.rate > 0 && d.remaining === 0) return deny('rate_limited', Math.ceil(d.fullInMs - (p.burst - 1) * 1000 / p.rate));
  return undefined;
}

/** The remembered denial as the store would answer it now: clocks run down, tokens refill. */
function retimed(e: Entry, now: number): Decision {
  const d = e.decision;
  const elapsed = now - e.at;
  const fullInMs = Math.max(0, d.fullInMs - elapsed);
  return {
    ...d,
    // The real wait, not the entry's life: maxMs only bounds how long this process trusts it.
    retryAfterMs: Math.max(1, d.retryAfterMs - elapsed),
    fullInMs,
    // Nobody can take tokens while a quota refuses everything, and under a rate denial
    // this stays below 1 until `until`: either way it is what the store would report.
    remaining: e.policy.rate > 0 ? Math.max(0, Math.floor(e.policy.burst - fullInMs * e.policy.rate / 1000)) : d.remaining,
    dayResetMs: Math.max(0, d.dayResetMs - elapsed),
    monthResetMs: Math.max(0, d.monthResetMs - elapsed),
  };
}
