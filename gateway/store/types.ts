// The one interface both stores implement (memory for a single process, Redis for a
// fleet); the contract suite in store.contract.test.ts runs against each.

export interface LimitPolicy {
  /** Tokens per second; 0 disables the bucket. */
  readonly rate: number;
  readonly burst: number;
  /** 0 = unlimited. */
  readonly quotaDay: number;
  readonly quotaMonth: number;
  readonly maxInflight: number;
}

export type DenyReason = 'rate_limited' | 'quota_exceeded' | 'concurrency_limited';

export interface Decision {
  readonly allowed: boolean;
  readonly reason: DenyReason | undefined;
  /** Whole tokens left in the bucket after this request (below zero while a settlement's extra charge is being refilled). */
  readonly remaining: number;
  readonly retryAfterMs: number;
  /** Until the bucket is full again. */
  readonly fullInMs: number;
  readonly dayUsed: number;
  readonly monthUsed: number;
  readonly inflight: number;
  readonly dayResetMs: number;
  readonly monthResetMs: number;
}

/** A batch of tokens taken for a token lease: the decision, and how many units it took (0 when refused). */
export interface Grant {
  readonly decision: Decision;
  readonly taken: number;
  /** The UTC day and month the units were counted in, for giving the unused ones back. */
  readonly day: number;
  readonly month: number;
}

/**
 * One zone of an nginx `limit_req` check (gateway/limit-req). All quantities are in
 * nginx's units: milli-requests and milli-requests per second.
 */
export interface LimitReqCheck {
  readonly zone: string;
  /** The zone's key value for this request (never empty: an empty key is not limited). */
  readonly key: string;
  readonly rateMilli: number;
  readonly burstMilli: number;
  /** Excess that passes without delay (delay * 1000; nodelay = burst * 1000). */
  readonly delayMilli: number;
}

export interface LimitReqResult {
  /** False: zone `zone` refused it and nothing was written. */
  readonly passed: boolean;
  /** Index into the checks: the zone that refused, or the one that set the delay (-1: none). */
  readonly zone: number;
  /** That zone's excess for this request, milli-requests. */
  readonly excess: number;
  /** How long nginx would hold the passed request back, ms (0: at once). */
  readonly delayMs: number;
  /** When the store decided, ms on the clock it drains by (Redis TIME, or the memory store's). */
  readonly at: number;
}

/** One zone of an nginx `limit_conn` check (gateway/limit-req/limit-conn-stage.ts). */
export interface LimitConnCheck {
  readonly zone: string;
  /** The zone's key value for this request (never empty: an empty key is not limited). */
  readonly key: string;
  /** Requests of this key that may be in flight at once. */
  readonly max: number;
}

export interface LimitConnResult {
  /** False: zone `zone` was full and no slot was taken in any zone. */
  readonly passed: boolean;
  /** Index into the checks of the full zone (-1 when passed). */
  readonly zone: number;
  /** Requests in flight in that zone for that key (0 when passed). */
  readonly inflight: number;
}

export interface KeyRecord {
  /** Hex digest of the key; the plain key is never stored. */
  readonly digest: string;
  readonly customer: string;
  readonly plan: string | undefined;
  readonly label: string | undefined;
  readonly createdAt: number;
  /** Unix ms from which the key is refused; undefined: never. */
  readonly expiresAt?: number | undefined;
  /** Set by a rotation: when it happened, and until when this (old) key keeps working. */
  readonly rotatedAt?: number | undefined;
  readonly graceUntil?: number | undefined;
  /** Digest of the key that replaced this one. */
  readonly replacedBy?: string | undefined;
  /** CIDRs the key may be used from; undefined: anywhere. */
  readonly allow?: readonly string[] | undefined;
  /** Last request with the key, as far as the gateways have reported it (touchKeys, batched). */
  readonly lastUsedAt?: number | undefined;
}

export interface CustomerRecord {
  readonly id: string;
  readonly plan: string | undefined;
  /** Limit fields (snake_case, as in the config: numbers, and a `costs` object) that win over the plan. */
  readonly overrides: Readonly<Record<string, unknown>>;
  /** Where the customer's account events (quota.threshold) are POSTed. */
  readonly webhookUrl?: string | undefined;
}

export interface Usage {
  readonly dayUsed: number;
  readonly monthUsed: number;
  readonly inflight: number;
  readonly tokens: number;
}

/**
 * After a response: units charged beyond the admission (positive) or given back
 * (negative), in the keys admit() charged (lua-compat/redis/settle.lua).
 */
export interface Settlement {
  /** Units more to take from the token bucket; negative: give back (never past burst). */
  readonly tokens: number;
  /** Units more to count in the day and month; negative: give back (never below zero). */
  readonly quota: number;
  /** The UTC day (days since 1970-01-01) and month (yyyymm) the request was admitted in: a give-back only reaches those. */
  readonly day: number;
  readonly month: number;
  /** Report `lifted` when, before a give-back, a request of this many units would have been refused. */
  readonly floor: number;
}

export interface Settled {
  /** Units were given back while a cached denial of this subject may exist on some gateway. */
  readonly lifted: boolean;
  /** The counters afterwards: day and month ids (0: none) and their counts. */
  readonly day: number;
  readonly dayUsed: number;
  readonly month: number;
  readonly monthUsed: number;
}

/** One customer's usage on one UTC day: counters by name (requests, units, bytes_in, class:image, ...). */
export interface UsageRow {
  readonly customer: string;
  /** Days since 1970-01-01 (UTC). */
  readonly day: number;
  readonly counts: Readonly<Record<string, number>>;
}

/** A response kept for replay under an Idempotency-Key. */
export interface StoredResponse {
  readonly status: number;
  /** Flat [name, value, ...]. */
  readonly headers: readonly string[];
  /** undefined: the body was over the size limit and was not kept. */
  readonly body: Buffer | undefined;
}

/** What the store knows of an idempotency key when a request carrying it arrives. */
export type IdempotencyState =
  | { readonly kind: 'new' }
  | { readonly kind: 'running' }
  | { readonly kind: 'mismatch' }
  | { readonly kind: 'done'; readonly response: StoredResponse };

/** Cache invalidations broadcast to every gateway sharing the store. */
export type Invalidation =
  | { readonly kind: 'key'; readonly digest: string }
  | { readonly kind: 'customer'; readonly id: string }
  /** A refund made a cached denial of this limit subject untrue: drop it (gateway/limits/deny-cache.ts). */
  | { readonly kind: 'denial'; readonly subject: string };

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Decide and commit every limit of one request at once; a denial consumes nothing.
   * `cost`: the units the request takes from the bucket and each quota (default 1).
   */
  admit(subject: string, policy: LimitPolicy, leaseId: string, leaseTtlMs: number, cost?: number): Promise<Decision>;
  /**
   * A token lease's batch: like admit, but takes up to `max` units at once (at least
   * `cost`, the request's own) from the bucket and the quotas, as far as they have room.
   * Never with maxInflight.
   */
  take(subject: string, policy: LimitPolicy, max: number, cost?: number): Promise<Grant>;
  /** Charges or gives back the difference between what admit() took and what the request cost. */
  settle(subject: string, policy: LimitPolicy, s: Settlement): Promise<Settled>;
  /** Gives back `unused` units of a grant taken in the given day and month. */
  giveBack(subject: string, policy: LimitPolicy, unused: number, day: number, month: number): Promise<void>;
  /** End an in-flight lease taken by admit (only when the policy had maxInflight). */
  release(subject: string, leaseId: string): Promise<void>;
  usage(subject: string): Promise<Usage>;
  /**
   * nginx `limit_req` over all zones of one request, in order, atomically: the first
   * zone over its burst refuses and nothing is written; otherwise every zone is accounted.
   */
  limitReq(checks: readonly LimitReqCheck[]): Promise<LimitReqResult>;
  /**
   * nginx `limit_conn` over all zones of one request, atomically: a slot (lease `leaseId`,
   * expiring after leaseTtlMs) is taken in every zone, or, when any zone is full, in none.
   */
  limitConn(checks: readonly LimitConnCheck[], leaseId: string, leaseTtlMs: number): Promise<LimitConnResult>;
  /** Gives back the slots limitConn took for `leaseId` (the request ended). */
  releaseConn(checks: readonly LimitConnCheck[], leaseId: string): Promise<void>;

  findKey(digest: string): Promise<KeyRecord | undefined>;
  saveKey(record: KeyRecord): Promise<void>;
  /** True when the key existed. */
  revokeKey(digest: string): Promise<boolean>;
  listKeys(customer: string | undefined): Promise<KeyRecord[]>;
  /**
   * Records when keys were last used (digest → Unix ms), one batch for many requests; a
   * time older than the one stored, or a key that no longer exists, changes nothing.
   */
  touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void>;
  findCustomer(id: string): Promise<CustomerRecord | undefined>;
  saveCustomer(record: CustomerRecord): Promise<void>;

  /**
   * Shared stores only: record that this gateway is alive for ttlMs and answer how many
   * are (itself included), so a gateway that fails open can size its local buckets.
   */
  heartbeat?(instanceId: string, ttlMs: number): Promise<number>;

  /** Adds to customers' daily usage counters, kept retentionDays after their day. */
  addUsage(rows: readonly UsageRow[], retentionDays: number): Promise<void>;
  /** Daily usage from fromDay to toDay (inclusive), of one customer or (undefined) every customer with any; sorted by day, then customer. */
  readUsage(customer: string | undefined, fromDay: number, toDay: number): Promise<UsageRow[]>;
  /**
   * Marks that a quota threshold was crossed in a period: true for the first caller only
   * (fleet-wide, for ttlMs), so one event is sent however many gateways saw the crossing.
   */
  markThreshold(subject: string, period: string, percent: number, ttlMs: number): Promise<boolean>;

  /**
   * An Idempotency-Key arrives: claims it (new: the caller runs the request, holding the
   * claim `token` for up to lockMs) or says what became of the request that claimed it.
   */
  idempotencyBegin(customer: string, key: string, fingerprint: string, token: string, lockMs: number): Promise<IdempotencyState>;
  /** The claimed request's response, kept for ttlMs; only while `token` still holds the claim. */
  idempotencyFinish(customer: string, key: string, token: string, response: StoredResponse, ttlMs: number): Promise<void>;
  /** Gives the claim up (the request failed before or without a response worth keeping), so a retry runs again. */
  idempotencyAbandon(customer: string, key: string, token: string): Promise<void>;

  publish(msg: Invalidation): Promise<void>;
  subscribe(onMessage: (msg: Invalidation) => void): Promise<void>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

export const REASON_BY_CODE: readonly (DenyReason | undefined)[] = [
  undefined, 'rate_limited', 'quota_exceeded', 'quota_exceeded', 'concurrency_limited',
];
