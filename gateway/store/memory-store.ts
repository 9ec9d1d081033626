import { decideLimitReq, drainedAt, type ZoneState } from '../limit-req/limit-req-math.js';
import { periodsAt } from './calendar.js';
import type {
  CustomerRecord, Decision, DenyReason, Grant, Invalidation, KeyRecord, LimitConnCheck, LimitConnResult, LimitPolicy, LimitReqCheck, LimitReqResult,
  Store, Usage,
} from './types.js';

interface ReqZoneState extends ZoneState { drainedAt: number }

interface Bucket { tokens: number; ts: number; fullAt: number }
const SWEEP_INTERVAL_MS = 60_000;

interface Counters { d: number; dn: number; m: number; mn: number }

/** Lease id -> expiry (ms); an expired lease no longer holds its slot. */
type Leases = Map<string, number>;

/** Drops the expired leases and answers how many still hold a slot. */
function liveLeases(leases: Leases | undefined, now: number): number {
  if (leases === undefined) return 0;
  for (const [id, expiry] of leases) if (expiry <= now) leases.delete(id);
  return leases.size;
}

function addLease(sets: Map<string, Leases>, k: string, leaseId: string, expiry: number): void {
  let leases = sets.get(k);
  if (leases === undefined) { leases = new Map(); sets.set(k, leases); }
  leases.set(leaseId, expiry);
}

function dropLease(sets: Map<string, Leases>, k: string, leaseId: string): void {
  const leases = sets.get(k);
  if (leases === undefined) return;
  leases.delete(leaseId);
  if (leases.size === 0) sets.delete(k);
}

/** Forgets sets whose every lease expired (an abandoned lease, a crashed caller). */
function sweepLeases(sets: Map<string, Leases>, now: number): void {
  for (const [k, leases] of sets) if (liveLeases(leases, now) === 0) sets.delete(k);
}

/**
 * Single-process store. `admit` follows lua-compat/redis/admit.lua step by step
 * (in-flight, then quotas, then bucket, then commit) so both stores pass one
 * contract suite; the clock is injectable for tests.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  private readonly buckets = new Map<string, Bucket>();
  private readonly counters = new Map<string, Counters>();
  private readonly leases = new Map<string, Leases>();
  /** nginx limit_conn leases per `zone NUL key`. */
  private readonly connLeases = new Map<string, Leases>();
  private nextConnSweepAt = 0;
  /** nginx limit_req state per `zone NUL key`. */
  private readonly reqZones = new Map<string, ReqZoneState>();
  private nextReqSweepAt = 0;
  private readonly keys = new Map<string, KeyRecord>();
  private readonly customers = new Map<string, CustomerRecord>();
  private readonly listeners: ((msg: Invalidation) => void)[] = [];

  private nextSweepAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** Subjects with any state kept (buckets, counters or leases), for tests and capacity checks. */
  trackedSubjects(): number {
    return new Set([...this.buckets.keys(), ...this.counters.keys(), ...this.leases.keys()]).size;
  }

  /**
   * Forget what no longer matters, as Redis's expiries do: buckets that have refilled
   * (a full bucket is the same as none), counters of past months, expired leases. Runs
   * from admit at most once a minute, so memory follows the active subjects, not every
   * subject ever seen.
   */
  private sweep(now: number, month: number): void {
    this.nextSweepAt = now + SWEEP_INTERVAL_MS;
    for (const [s, b] of this.buckets) if (b.fullAt <= now) this.buckets.delete(s);
    for (const [s, c] of this.counters) if (c.m !== month) this.counters.delete(s);
    sweepLeases(this.leases, now);
  }

  async admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number): Promise<Decision> {
    return this.admitSync(subject, policy, leaseId, leaseTtlMs);
  }

  /** Synchronous form, also used as the local fallback when a remote store fails. */
  admitSync(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number): Decision {
    return this.takeSync(subject, policy, leaseId, leaseTtlMs, 1).decision;
  }

  async take(subject: string, policy: LimitPolicy, max: number): Promise<Grant> {
    return this.takeSync(subject, { ...policy, maxInflight: 0 }, '', 0, max);
  }

  /** admit.lua with its optional max_cost: up to `max` units, at most a tenth of what each limit has left, at least one. */
  private takeSync(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, max: number): Grant {
    const now = this.now();
    const p = periodsAt(now);
    const monthResetMs = p.monthEndMs - now;
    let cost = 1;
    if (now >= this.nextSweepAt) this.sweep(now, p.month);

    // Read everything first; nothing is written until every limit has passed.
    const inflight = policy.maxInflight > 0 ? liveLeases(this.leases.get(subject), now) : 0;

    const c = this.counters.get(subject);
    const dayUsed = c !== undefined && c.d === p.day ? c.dn : 0;
    const monthUsed = c !== undefined && c.m === p.month ? c.mn : 0;

    const b = this.buckets.get(subject);
    let tokens = 0;
    let remaining = 0;
    let fullInMs = 0;
    if (policy.rate > 0) {
      tokens = b === undefined ? policy.burst : Math.min(policy.burst, b.tokens + Math.max(0, now - b.ts) * policy.rate / 1000);
      remaining = Math.floor(tokens);
      fullInMs = Math.ceil((policy.burst - tokens) * 1000 / policy.rate);
    }

    if (max > cost) {
      let room = max;
      if (policy.rate > 0) room = Math.min(room, Math.floor(tokens / 10));
      if (policy.quotaDay > 0) room = Math.min(room, Math.floor((policy.quotaDay - dayUsed) / 10));
      if (policy.quotaMonth > 0) room = Math.min(room, Math.floor((policy.quotaMonth - monthUsed) / 10));
      if (room > cost) cost = room;
    }

    const denied = (reason: DenyReason, retryAfterMs: number): Grant => ({
      decision: {
        allowed: false, reason, remaining, retryAfterMs, fullInMs, dayUsed, monthUsed, inflight,
        dayResetMs: p.dayResetMs, monthResetMs,
      },
      taken: 0, day: p.day, month: p.month,
    });
    if (policy.maxInflight > 0 && inflight + 1 > policy.maxInflight) return denied('concurrency_limited', 1000);
    if (policy.quotaDay > 0 && dayUsed + cost > policy.quotaDay) return denied('quota_exceeded', p.dayResetMs);
    if (policy.quotaMonth > 0 && monthUsed + cost > policy.quotaMonth) return denied('quota_exceeded', monthResetMs);
    if (policy.rate > 0 && tokens < cost) return denied('rate_limited', Math.ceil((cost - tokens) * 1000 / policy.rate));

    if (policy.rate > 0) {
      tokens -= cost;
      remaining = Math.floor(tokens);
      fullInMs = Math.ceil((policy.burst - tokens) * 1000 / policy.rate);
      if (b === undefined) this.buckets.set(subject, { tokens, ts: now, fullAt: now + fullInMs });
      else { b.tokens = tokens; b.ts = now; b.fullAt = now + fullInMs; }
    }
    if (c === undefined) this.counters.set(subject, { d: p.day, dn: dayUsed + cost, m: p.month, mn: monthUsed + cost });
    else { c.d = p.day; c.dn = dayUsed + cost; c.m = p.month; c.mn = monthUsed + cost; }
    if (policy.maxInflight > 0) addLease(this.leases, subject, leaseId, now + leaseTtlMs);
    return {
      decision: {
        allowed: true, reason: undefined, remaining, retryAfterMs: 0, fullInMs,
        dayUsed: dayUsed + cost, monthUsed: monthUsed + cost, inflight: policy.maxInflight > 0 ? inflight + 1 : 0,
        dayResetMs: p.dayResetMs, monthResetMs,
      },
      taken: cost, day: p.day, month: p.month,
    };
  }

  /** Mirrors lua-compat/redis/lease_return.lua. */
  async giveBack(subject: string, policy: LimitPolicy, unused: number, day: number, month: number): Promise<void> {
    const now = this.now();
    const b = this.buckets.get(subject);
    if (policy.rate > 0 && b !== undefined) {
      b.tokens = Math.min(policy.burst, b.tokens + Math.max(0, now - b.ts) * policy.rate / 1000 + unused);
      b.ts = now;
      b.fullAt = now + Math.ceil((policy.burst - b.tokens) * 1000 / policy.rate);
    }
    const c = this.counters.get(subject);
    if (c !== undefined && c.d === day) c.dn = Math.max(0, c.dn - unused);
    if (c !== undefined && c.m === month) c.mn = Math.max(0, c.mn - unused);
  }

  /**
   * As the fail-open fallback: set a subject's bucket and counters to a 1/n share of what
   * the shared store just reported, so a later local decision starts from the fleet's
   * state (an empty bucket stays empty) instead of a full one. In-flight is not seeded:
   * local leases count this gateway's own requests.
   */
  seedSync(subject: string, d: Decision, n: number): void {
    const now = this.now();
    const b = this.buckets.get(subject);
    if (d.fullInMs <= 0) this.buckets.delete(subject);
    else if (b === undefined) this.buckets.set(subject, { tokens: d.remaining / n, ts: now, fullAt: now + d.fullInMs });
    else { b.tokens = d.remaining / n; b.ts = now; b.fullAt = now + d.fullInMs; }
    if (d.dayUsed === 0 && d.monthUsed === 0) { this.counters.delete(subject); return; }
    const p = periodsAt(now);
    const c = this.counters.get(subject);
    const dn = Math.ceil(d.dayUsed / n);
    const mn = Math.ceil(d.monthUsed / n);
    if (c === undefined) this.counters.set(subject, { d: p.day, dn, m: p.month, mn });
    else { c.d = p.day; c.dn = dn; c.m = p.month; c.mn = mn; }
  }

  async limitReq(checks: readonly LimitReqCheck[]): Promise<LimitReqResult> {
    return this.limitReqSync(checks);
  }

  /** Synchronous form: the memory store decides without a promise on the request path. */
  limitReqSync(checks: readonly LimitReqCheck[]): LimitReqResult {
    const now = this.now();
    if (now >= this.nextReqSweepAt) {
      // A drained key is the same as a key never seen (both give excess 0 next time).
      this.nextReqSweepAt = now + SWEEP_INTERVAL_MS;
      for (const [k, st] of this.reqZones) if (st.drainedAt <= now) this.reqZones.delete(k);
    }
    return decideLimitReq(checks, now,
      (c) => this.reqZones.get(`${c.zone}\0${c.key}`),
      (c, excess, last) => {
        const k = `${c.zone}\0${c.key}`;
        const st = this.reqZones.get(k);
        const until = drainedAt(excess, last, c.rateMilli);
        if (st === undefined) this.reqZones.set(k, { excess, last, drainedAt: until });
        else { st.excess = excess; st.last = last; st.drainedAt = until; }
      });
  }

  /** Keys with limit_req state kept, for tests. */
  trackedReqKeys(): number {
    return this.reqZones.size;
  }

  async limitConn(checks: readonly LimitConnCheck[], leaseId: string, leaseTtlMs: number): Promise<LimitConnResult> {
    return this.limitConnSync(checks, leaseId, leaseTtlMs);
  }

  /** Mirrors lua-compat/redis/limit_conn.lua: every zone is checked before any slot is taken. */
  limitConnSync(checks: readonly LimitConnCheck[], leaseId: string, leaseTtlMs: number): LimitConnResult {
    const now = this.now();
    if (now >= this.nextConnSweepAt) {
      this.nextConnSweepAt = now + SWEEP_INTERVAL_MS;
      sweepLeases(this.connLeases, now);
    }
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const inflight = liveLeases(this.connLeases.get(`${c.zone}\0${c.key}`), now);
      if (inflight >= c.max) return { passed: false, zone: i, inflight };
    }
    for (const c of checks) addLease(this.connLeases, `${c.zone}\0${c.key}`, leaseId, now + leaseTtlMs);
    return { passed: true, zone: -1, inflight: 0 };
  }

  async releaseConn(checks: readonly LimitConnCheck[], leaseId: string): Promise<void> {
    this.releaseConnSync(checks, leaseId);
  }

  releaseConnSync(checks: readonly LimitConnCheck[], leaseId: string): void {
    for (const c of checks) dropLease(this.connLeases, `${c.zone}\0${c.key}`, leaseId);
  }

  /** Zone keys with limit_conn leases kept, for tests. */
  trackedConnKeys(): number {
    return this.connLeases.size;
  }

  async release(subject: string, leaseId: string): Promise<void> {
    this.releaseSync(subject, leaseId);
  }

  releaseSync(subject: string, leaseId: string): void {
    dropLease(this.leases, subject, leaseId);
  }

  async usage(subject: string): Promise<Usage> {
    const now = this.now();
    const p = periodsAt(now);
    const c = this.counters.get(subject);
    const leases = this.leases.get(subject);
    let inflight = 0;
    if (leases !== undefined) for (const expiry of leases.values()) if (expiry > now) inflight++;
    return {
      dayUsed: c !== undefined && c.d === p.day ? c.dn : 0,
      monthUsed: c !== undefined && c.m === p.month ? c.mn : 0,
      inflight,
      tokens: this.buckets.get(subject)?.tokens ?? -1,
    };
  }

  async findKey(digest: string): Promise<KeyRecord | undefined> { return this.keys.get(digest); }
  async saveKey(record: KeyRecord): Promise<void> {
    // As on Redis, last-used times belong to touchKeys: a save keeps the one recorded.
    const r = record;
    this.keys.set(r.digest, {
      digest: r.digest, customer: r.customer, plan: r.plan, label: r.label, createdAt: r.createdAt, expiresAt: r.expiresAt, rotatedAt: r.rotatedAt,
      graceUntil: r.graceUntil, replacedBy: r.replacedBy, allow: r.allow, lastUsedAt: this.keys.get(r.digest)?.lastUsedAt,
    });
  }
  async revokeKey(digest: string): Promise<boolean> { return this.keys.delete(digest); }
  async listKeys(customer: string | undefined): Promise<KeyRecord[]> {
    return [...this.keys.values()].filter((k) => customer === undefined || k.customer === customer);
  }
  async touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    for (const [digest, at] of lastUsed) {
      const k = this.keys.get(digest);
      if (k !== undefined && (k.lastUsedAt ?? 0) < at) this.keys.set(digest, { ...k, lastUsedAt: at });
    }
  }
  async findCustomer(id: string): Promise<CustomerRecord | undefined> { return this.customers.get(id); }
  async saveCustomer(record: CustomerRecord): Promise<void> { this.customers.set(record.id, record); }

  async publish(msg: Invalidation): Promise<void> {
    for (const l of this.listeners) l(msg);
  }
  async subscribe(onMessage: (msg: Invalidation) => void): Promise<void> {
    this.listeners.push(onMessage);
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}
