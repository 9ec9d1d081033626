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
 * frees a slot at a moment nobody can predict. The one way units come back early is a
 * settlement's give-back or a refund (gateway/credits/settlement.ts): when it lands
 * where a request could have been refused, the gateway that gave it back publishes a
 * `denial` invalidation and every gateway drops its entry (invalidate()); the bound is
 * in docs/limits.md.
 *
 * With costs, a request of many units may be refused where a cheaper one passes: an
 * entry keeps the state the store reported (tokens, day and month used) and refuses
 * only a request that state surely refuses; any other asks the store.
 *
 * An admitted request that left the bucket empty (or a quota used up) proves the same
 * thing about the next request, so it is remembered as the denial the store would give:
 * that makes it one store call per token returned rather than two.
 *
 * When an entry no longer refuses, one request (the probe) asks the store; requests of
 * the same subject arriving meanwhile wait for its answer instead of racing it to the
 * store, which for a client with N requests in flight would be N calls per window.
 */
export class DenyCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly probes = new Map<string, Promise<void>>();

  constructor(maxSubjects = 10_000, private readonly now: () => number = Date.now) {
    this.entries = new LRUCache({ max: maxSubjects });
  }

  /**
   * `cost`: the units the request would take. `call(a, b)` asks the store; its arguments
   * come separately so a caller needs no closure per request.
   */
  decide<A, B>(subject: string, policy: LimitPolicy, cost: number, maxMs: number, call: (a: A, b: B) => Verdict | Promise<Verdict>, a: A, b: B, waits = 0): CachedVerdict | Promise<CachedVerdict> {
    if (maxMs <= 0) return call(a, b);
    const e = this.entries.get(subject);
    if (e === undefined || e.policy !== policy) return this.learnFrom(subject, policy, maxMs, call, a, b);
    const now = this.now();
    if (now < e.until) {
      const d = denialAt(policy, e.decision, cost, now - e.at);
      if (d !== undefined) return { source: 'cache', decision: d };
    }
    const probe = this.probes.get(subject);
    // The probe's own denial may be over before its answer is read (an entry is timed from
    // before the call, so it ends early by the call's latency): the waiters then follow the
    // next probe rather than all asking the store at once. A few waits at most, then the store.
    if (probe !== undefined && waits < MAX_PROBE_WAITS) return probe.then(() => this.decide(subject, policy, cost, maxMs, call, a, b, waits + 1));
    const v = this.learnFrom(subject, policy, maxMs, call, a, b);
    if (v instanceof Promise && probe === undefined) {
      const done = v.then(() => undefined, () => undefined).finally(() => this.probes.delete(subject));
      this.probes.set(subject, done);
    }
    return v;
  }

  /** A give-back may have made this subject's entry untrue (a `denial` invalidation). */
  invalidate(subject: string): void {
    this.entries.delete(subject);
  }

  /** Messages may have been missed (the invalidation channel reconnected): forget everything. */
  clear(): void {
    this.entries.clear();
  }

  private learnFrom<A, B>(subject: string, policy: LimitPolicy, maxMs: number, call: (a: A, b: B) => Verdict | Promise<Verdict>, a: A, b: B): Verdict | Promise<Verdict> {
    // The store decided after this instant, so timing the entry from here can only end it early, never late.
    const at = this.now();
    const v = call(a, b);
    if (v instanceof Promise) return v.then((res) => { this.learn(subject, policy, maxMs, res, at); return res; });
    this.learn(subject, policy, maxMs, v, at);
    return v;
  }

  private learn(subject: string, policy: LimitPolicy, maxMs: number, v: Verdict, at: number): void {
    // Fallback buckets are this process's guess, not the fleet's state.
    if (v.source !== 'store' || !refusesSomething(policy, v.decision)) {
      this.entries.delete(subject);
      return;
    }
    this.entries.set(subject, { policy, at, until: at + maxMs, decision: v.decision });
  }
}

/** Worth remembering: the store refused a rate or quota (for this request's cost), or the next one-unit request would be refused. */
function refusesSomething(p: LimitPolicy, d: Decision): boolean {
  if (!d.allowed) return d.reason === 'rate_limited' || d.reason === 'quota_exceeded';
  return denialAhead(p, d) !== undefined;
}

/** The denial in force after decision d for a request of `cost` units, or undefined. */
export function denialAhead(p: LimitPolicy, d: Decision, cost = 1): Decision | undefined {
  return d.reason === 'concurrency_limited' ? undefined : denialAt(p, d, cost, 0);
}

/**
 * The denial a request of `cost` units surely gets `elapsed` ms after decision d, from
 * d's state alone: quotas only fill until their period ends, and the bucket only refills
 * (other gateways can only take). The store's own order of checks, in-flight aside.
 */
function denialAt(p: LimitPolicy, d: Decision, cost: number, elapsed: number): Decision | undefined {
  const dayResetMs = d.dayResetMs - elapsed;
  const monthResetMs = d.monthResetMs - elapsed;
  const fullInMs = Math.max(0, d.fullInMs - elapsed);
  const tokens = p.burst - fullInMs * p.rate / 1000;
  const deny = (reason: DenyReason, retryAfterMs: number): Decision => ({
    ...d,
    allowed: false,
    reason,
    retryAfterMs: Math.max(1, Math.ceil(retryAfterMs)),
    fullInMs,
    // Nobody can take tokens while a quota refuses everything, and under a rate denial
    // this stays below the cost until then: either way it is what the store would report.
    remaining: p.rate > 0 ? Math.max(0, Math.floor(tokens)) : d.remaining,
    dayResetMs: Math.max(0, dayResetMs),
    monthResetMs: Math.max(0, monthResetMs),
  });
  if (p.quotaDay > 0 && d.dayUsed + cost > p.quotaDay && dayResetMs > 0) return deny('quota_exceeded', dayResetMs);
  if (p.quotaMonth > 0 && d.monthUsed + cost > p.quotaMonth && monthResetMs > 0) return deny('quota_exceeded', monthResetMs);
  if (p.rate > 0 && tokens < cost) return deny('rate_limited', (cost - tokens) * 1000 / p.rate);
  return undefined;
}
