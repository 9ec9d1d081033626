import { Cluster, type RedisOptions } from 'ioredis';
import { readFileSync } from 'node:fs';
import type { StoreConfig } from '../config/types.js';
import { withDeadline } from '../../common/deadline.js';
import { MAX_ZONES_PER_ROUTE } from '../config/schema/routes.js';
import { countedIn, periodsAt } from './calendar.js';
import { monotonicMs, RedisClock } from './redis-clock.js';
import { clusterSlot, keySchema, type KeySchema } from './key-schema.js';
import { createRedisClient, type RedisClient } from '../../common/redis-client.js';
import { scanAll } from '../../common/redis-scan.js';
import { RedisCredits } from './redis-credits.js';
import {
  REASON_BY_CODE, type CustomerRecord, type Decision, type Grant, type IdempotencyState, type Invalidation, type KeyRecord, type LimitPolicy,
  type LimitConnCheck, type LimitConnResult, type LimitReqCheck, type LimitReqResult, type Settled, type Settlement, type Store, type StoredResponse, type Usage, type UsageRow,
} from './types.js';

const luaScript = (name: string): string => readFileSync(new URL(`../../../lua-compat/redis/${name}`, import.meta.url), 'utf8');
const ADMIT_LUA = luaScript('admit.lua');
const USAGE_LUA = luaScript('usage.lua');
const INSTANCES_LUA = luaScript('instances.lua');
const LEASE_RETURN_LUA = luaScript('lease_return.lua');
const SETTLE_LUA = luaScript('settle.lua');
const LIMIT_REQ_LUA = luaScript('limit_req.lua');
const LIMIT_CONN_LUA = luaScript('limit_conn.lua');

type AdmitReply = [number, number, number, number, number, number, number, number, number, number, number];
type UsageReply = [number, string, string, string, string, number, string];

interface ScriptCommands {
  sluiceAdmit(bucket: string, counters: string, leases: string, ...argv: (string | number)[]): Promise<AdmitReply>;
  sluiceUsage(bucket: string, counters: string, leases: string): Promise<UsageReply>;
  sluiceInstances(instances: string, id: string, ttlMs: number): Promise<number>;
  sluiceLeaseReturn(bucket: string, counters: string, ...argv: (string | number)[]): Promise<number>;
  sluiceSettle(bucket: string, counters: string, ...argv: (string | number)[]): Promise<[number, number, number, number, number]>;
  sluicePublish(channel: string, message: string): Promise<number>;
  sluiceTouchKey(key: string, at: number): Promise<number>;
}

/** admit.lua's reason 5: the call reached Redis after its expires_at and took nothing. */
const REASON_EXPIRED = 5;

/**
 * A store call that reached Redis after the moment this gateway had stopped waiting for it
 * (admit.lua's expires_at): nothing was taken. The guard treats it as a failed call.
 */
export class StoreCallExpired extends Error {
  constructor() { super('the store call reached Redis after its deadline and took nothing'); }
}

function decisionOf(r: AdmitReply): Decision {
  if (r[1] === REASON_EXPIRED) throw new StoreCallExpired();
  return {
    allowed: r[0] === 1,
    reason: REASON_BY_CODE[r[1]],
    remaining: r[2],
    retryAfterMs: r[3],
    fullInMs: r[4],
    dayUsed: r[5],
    monthUsed: r[6],
    inflight: r[7],
    dayResetMs: r[8],
    monthResetMs: r[9],
  };
}

/** Like nginx, which checks zones in order and stops at the first full one: the refusal of the earliest zone. */
function firstRefusal<T extends { passed: boolean; zone: number }>(results: readonly T[]): T | undefined {
  let first: T | undefined;
  for (const r of results) if (!r.passed && (first === undefined || r.zone < first.zone)) first = r;
  return first;
}

// Plain PUBLISH on a Cluster goes to an arbitrary node per call, and messages from two
// nodes can reach a subscriber in either order (a revoke overtaking the save it undoes).
// Sent from a script that names the channel as its key, every publish goes through the
// channel's slot master, which forwards them in order; on a single server it is PUBLISH.
// Only a key that still exists, and only forward in time.
const TOUCH_KEY_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], 'last_used') or '0') or 0
if old < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'last_used', ARGV[1]) end
return 1
`;
/** How long a key record is kept once the key has expired or its rotation grace ended. */
const DEAD_KEY_KEPT_MS = 7 * 86_400_000;
const PUBLISH_LUA = "return redis.call('PUBLISH', KEYS[1], ARGV[1])";

/** Per-connection behaviour the store relies on, in every deployment mode. */
const CONNECTION: RedisOptions = {
  enableAutoPipelining: true,
  // Commands while disconnected fail at once; the limiter's failure policy decides.
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(50 * times, 1000),
  connectionName: 'sluice',
};

/**
 * The store for a fleet (standalone, Sentinel or Cluster: common/redis-client.ts): one ioredis client with auto-pipelining (concurrent requests
 * share round trips), one subscriber connection for cache invalidations. The admit
 * script is lua-compat/redis/admit.lua, run with EVALSHA (ioredis falls back to EVAL
 * on NOSCRIPT, e.g. after a failover to a replica that never saw SCRIPT LOAD).
 */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  private readonly redis: RedisClient & ScriptCommands;
  private subscriber: RedisClient | undefined;
  private readonly cfg: StoreConfig;
  private readonly k: KeySchema;
  private readonly timeoutMs: number;
  private readonly credits: RedisCredits;
  /** Offset to Redis's clock, sampled with every heartbeat: calls carry their expiry in it. */
  private readonly clock = new RedisClock();
  /** How long after a call the guard may still take its answer: timeout_ms, plus late_grace_ms when its loop was late. */
  private readonly answerWithinMs: number;
  private closed = false;

  constructor(cfg: StoreConfig) {
    this.k = keySchema(cfg.prefix);
    this.timeoutMs = cfg.timeout_ms;
    this.answerWithinMs = cfg.timeout_ms + cfg.late_grace_ms;
    this.cfg = cfg;
    this.redis = createRedisClient(cfg, CONNECTION) as RedisClient & ScriptCommands;
    this.redis.defineCommand('sluiceAdmit', { numberOfKeys: 3, lua: ADMIT_LUA });
    this.redis.defineCommand('sluiceUsage', { numberOfKeys: 3, lua: USAGE_LUA });
    this.redis.defineCommand('sluiceInstances', { numberOfKeys: 1, lua: INSTANCES_LUA });
    this.redis.defineCommand('sluiceLeaseReturn', { numberOfKeys: 2, lua: LEASE_RETURN_LUA });
    this.redis.defineCommand('sluicePublish', { numberOfKeys: 1, lua: PUBLISH_LUA });
    this.redis.defineCommand('sluiceTouchKey', { numberOfKeys: 1, lua: TOUCH_KEY_LUA });
    this.redis.defineCommand('sluiceSettle', { numberOfKeys: 2, lua: SETTLE_LUA });
    this.defineZoneScripts();
    this.credits = new RedisCredits(this.redis, this.k);
    // Errors surface on each command; an unhandled 'error' event would crash the process.
    this.redis.on('error', () => {});
  }

  /**
   * The connection, for what the admin side keeps beside the limits in the same Redis
   * (the audit log, the webhook signing keys): one client per process.
   */
  get client(): RedisClient {
    return this.redis;
  }

  /** Resolves once connected (or rejects after timeoutMs); the gateway starts either way. */
  async ready(timeoutMs: number): Promise<void> {
    if (this.redis.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('redis not ready')), timeoutMs);
      this.redis.once('ready', () => { clearTimeout(t); resolve(); });
    });
  }

  async admit(subject: string, p: LimitPolicy, leaseId: string, leaseTtlMs: number, cost = 1): Promise<Decision> {
    return decisionOf(await this.redis.sluiceAdmit(
      this.k.bucket(subject), this.k.counters(subject), this.k.leases(subject),
      p.rate, p.burst, cost, p.quotaDay, p.quotaMonth, p.maxInflight, leaseId, leaseTtlMs, 0, this.expiresAt(),
    ));
  }

  async take(subject: string, p: LimitPolicy, max: number, cost = 1): Promise<Grant> {
    const r = await this.redis.sluiceAdmit(
      this.k.bucket(subject), this.k.counters(subject), this.k.leases(subject),
      p.rate, p.burst, cost, p.quotaDay, p.quotaMonth, 0, '', 0, max, this.expiresAt(),
    );
    const decision = decisionOf(r);
    return { decision, taken: r[10], ...countedIn(r[8]) };
  }

  /**
   * When the guard stops waiting for a call made now, on Redis's clock (admit.lua's
   * expires_at): a call still queued then (a cut link, a paused Redis) takes nothing when
   * it arrives. 0 until the first heartbeat has measured the offset.
   */
  private expiresAt(): number {
    return this.clock.redisTimeIn(this.answerWithinMs);
  }

  async giveBack(subject: string, p: LimitPolicy, unused: number, day: number, month: number): Promise<void> {
    await this.redis.sluiceLeaseReturn(this.k.bucket(subject), this.k.counters(subject), p.rate, p.burst, unused, day, month);
  }

  async settle(subject: string, p: LimitPolicy, s: Settlement): Promise<Settled> {
    const [lifted, day, dayUsed, month, monthUsed] = await this.redis.sluiceSettle(this.k.bucket(subject), this.k.counters(subject),
      p.rate, p.burst, s.tokens, s.quota, s.day, s.month, p.quotaDay, p.quotaMonth, s.floor);
    return { lifted: lifted === 1, day, dayUsed, month, monthUsed };
  }

  addUsage(rows: readonly UsageRow[], retentionDays: number): Promise<void> {
    return this.credits.addUsage(rows, retentionDays);
  }

  readUsage(customer: string | undefined, fromDay: number, toDay: number): Promise<UsageRow[]> {
    return this.credits.readUsage(customer, fromDay, toDay);
  }

  markThreshold(subject: string, period: string, percent: number, ttlMs: number): Promise<boolean> {
    return this.credits.markThreshold(subject, period, percent, ttlMs);
  }

  /** On the request path: bounded by the store timeout like a key lookup. */
  idempotencyBegin(customer: string, key: string, fingerprint: string, token: string, lockMs: number): Promise<IdempotencyState> {
    return this.withinTimeout(this.credits.idempotencyBegin(customer, key, fingerprint, token, lockMs), 'idempotency lookup');
  }

  idempotencyFinish(customer: string, key: string, token: string, response: StoredResponse, ttlMs: number): Promise<void> {
    return this.credits.idempotencyFinish(customer, key, token, response, ttlMs);
  }

  idempotencyAbandon(customer: string, key: string, token: string): Promise<void> {
    return this.credits.idempotencyAbandon(customer, key, token);
  }

  async limitReq(checks: readonly LimitReqCheck[]): Promise<LimitReqResult> {
    const keys = checks.map((c) => this.k.limitReq(c.zone, c.key));
    const run = async (idx: readonly number[], check: boolean) => {
      const args: (string | number)[] = idx.map((i) => keys[i]!);
      for (const i of idx) args.push(checks[i]!.rateMilli, checks[i]!.burstMilli, checks[i]!.delayMilli);
      if (check) args.push('check');
      const r = await this.zoneScript<[number, number, number, number, number]>('LimitReq', idx.length)(...args);
      return { passed: r[0] === 1, zone: r[1] === 0 ? -1 : idx[r[1] - 1]!, excess: r[2], delayMs: r[3], at: r[4] };
    };
    const decided = await this.acrossSlots(keys, run);
    if (!Array.isArray(decided)) return decided;
    // A zone that filled between the two halves refuses now; the others stay charged (the
    // one way this differs from one atomic script, and only across slots).
    return firstRefusal(decided) ?? decided.reduce((a, b) => (b.delayMs > a.delayMs ? b : a));
  }

  async limitConn(checks: readonly LimitConnCheck[], leaseId: string, leaseTtlMs: number): Promise<LimitConnResult> {
    const keys = checks.map((c) => this.k.limitConn(c.zone, c.key));
    const run = async (idx: readonly number[], check: boolean) => {
      const args: (string | number)[] = idx.map((i) => keys[i]!);
      args.push(leaseId, leaseTtlMs);
      for (const i of idx) args.push(checks[i]!.max);
      if (check) args.push('check');
      const r = await this.zoneScript<[number, number, number]>('LimitConn', idx.length)(...args);
      return { passed: r[0] === 1, zone: r[1] === 0 ? -1 : idx[r[1] - 1]!, inflight: r[2] };
    };
    const decided = await this.acrossSlots(keys, run);
    if (!Array.isArray(decided)) return decided;
    const late = firstRefusal(decided);
    // A zone that filled between the two halves: give back the slots the others took.
    if (late !== undefined) await this.releaseConn(checks, leaseId);
    return late ?? { passed: true, zone: -1, inflight: 0 };
  }

  /**
   * The zone scripts take one key per zone, so each key count is its own command. With the
   * count passed as an argument instead, its first argument would be a number, and on a
   * Cluster ioredis's auto-pipelining groups commands by the slot of the first argument:
   * calls for keys on different masters would share one pipeline, and all of them fail
   * ("All keys in the pipeline should belong to the same slots allocation group").
   *
   * Every count up to MAX_ZONES_PER_ROUTE is defined here, at construction, never on
   * first use: an auto-pipeline copies the client's commands when it is created, so a
   * command defined while one was waiting (Redis stopped, replies not yet in) was missing
   * from it, and ioredis then crashed the process on the pipeline's reply ("results[i] is
   * not iterable", redis/ioredis#1931). limit-req.store-down.test caught it.
   */
  private defineZoneScripts(): void {
    for (let keys = 1; keys <= MAX_ZONES_PER_ROUTE; keys++) {
      this.redis.defineCommand(`sluiceLimitReq${keys}`, { numberOfKeys: keys, lua: LIMIT_REQ_LUA });
      this.redis.defineCommand(`sluiceLimitConn${keys}`, { numberOfKeys: keys, lua: LIMIT_CONN_LUA });
    }
  }

  private zoneScript<R>(kind: 'LimitReq' | 'LimitConn', keys: number): (...args: (string | number)[]) => Promise<R> {
    const run = (this.redis as unknown as Record<string, ((...args: (string | number)[]) => Promise<R>) | undefined>)[`sluice${kind}${keys}`];
    if (run === undefined) throw new Error(`${keys} ${kind} zones on one route: at most ${MAX_ZONES_PER_ROUTE} (the config refuses more)`);
    return run.bind(this.redis);
  }

  /**
   * One zone script's decision over `keys`: a single call when one script can take them
   * all (the result); otherwise the two halves of slotGroups, giving the refusal the check
   * found, or every slot's charged result.
   */
  private async acrossSlots<R extends { passed: boolean; zone: number }>(
    keys: readonly string[], run: (idx: readonly number[], check: boolean) => Promise<R>,
  ): Promise<R | R[]> {
    const groups = this.slotGroups(keys);
    if (groups === undefined) return run(keys.map((_, i) => i), false);
    const refused = firstRefusal(await Promise.all(groups.map((g) => run(g, true))));
    if (refused !== undefined) return refused;
    return Promise.all(groups.map((g) => run(g, false)));
  }

  /**
   * A Cluster cannot run one script over keys in different slots, and nginx zones keyed by
   * different values (say $binary_remote_addr and $server_name) hash to different slots.
   * Those are decided in two halves: every slot's zones checked (nothing written), then,
   * if all passed, each slot's zones charged. Returns the zones' indices by slot, or
   * undefined when one script can take them all.
   */
  private slotGroups(keys: readonly string[]): number[][] | undefined {
    if (!(this.redis instanceof Cluster) || keys.length < 2) return undefined;
    const bySlot = new Map<number, number[]>();
    keys.forEach((key, i) => {
      const slot = clusterSlot(key);
      const group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, [i]);
      else group.push(i);
    });
    return bySlot.size === 1 ? undefined : [...bySlot.values()];
  }

  async releaseConn(checks: readonly LimitConnCheck[], leaseId: string): Promise<void> {
    // Auto-pipelining sends these in one round trip; the zones' keys may sit in different slots.
    await Promise.all(checks.map((c) => this.redis.zrem(this.k.limitConn(c.zone, c.key), leaseId)));
  }

  async release(subject: string, leaseId: string): Promise<void> {
    await this.redis.zrem(this.k.leases(subject), leaseId);
  }

  async usage(subject: string): Promise<Usage> {
    const [now, d, dn, m, mn, inflight, tokens] = await this.redis.sluiceUsage(
      this.k.bucket(subject), this.k.counters(subject), this.k.leases(subject),
    );
    const p = periodsAt(now);
    return {
      dayUsed: d !== '' && Number(d) === p.day ? Number(dn) : 0,
      monthUsed: m !== '' && Number(m) === p.month ? Number(mn) : 0,
      inflight,
      tokens: tokens === '' ? -1 : Number(tokens),
    };
  }

  /**
   * Reads on the request path (an auth cache miss) get the store timeout too: a paused
   * Redis keeps the connection up, so without a deadline a request would wait for as
   * long as the pause lasts. The caller decides what a failed lookup means.
   */
  private withinTimeout<T>(p: Promise<T>, what: string): Promise<T> {
    return withDeadline(p, this.timeoutMs, `store ${what}`);
  }

  findKey(digest: string): Promise<KeyRecord | undefined> {
    return this.withinTimeout(this.readKey(digest), 'key lookup');
  }

  private async readKey(digest: string): Promise<KeyRecord | undefined> {
    const h = await this.redis.hgetall(this.k.key(digest));
    if (h.customer === undefined) return undefined;
    const num = (v: string | undefined): number | undefined => (v === undefined || v === '' ? undefined : Number(v));
    return {
      digest, customer: h.customer, plan: h.plan || undefined, label: h.label || undefined, createdAt: Number(h.created ?? 0),
      expiresAt: num(h.expires), rotatedAt: num(h.rotated), graceUntil: num(h.grace_until), replacedBy: h.replaced_by || undefined,
      allow: h.allow ? h.allow.split(',') : undefined, lastUsedAt: num(h.last_used),
    };
  }

  // A key's record and its customer's index sit in different Cluster slots (the record is
  // found by digest alone, before the customer is known), so no MULTI spans both. The
  // record is the truth and the index may only over-list (listKeys checks each record):
  // the index gains a digest before the record does and loses it after.
  async saveKey(rec: KeyRecord): Promise<void> {
    const previous = await this.redis.hget(this.k.key(rec.digest), 'customer');
    await this.redis.sadd(this.k.customerKeys(rec.customer), rec.digest);
    const key = this.k.key(rec.digest);
    await this.redis.hset(key, {
      customer: rec.customer, plan: rec.plan ?? '', label: rec.label ?? '', created: rec.createdAt,
      expires: rec.expiresAt ?? '', rotated: rec.rotatedAt ?? '', grace_until: rec.graceUntil ?? '', replaced_by: rec.replacedBy ?? '',
      allow: rec.allow?.join(',') ?? '',
    });
    // A key that can no longer work is kept a while (so a request with it is told why), then forgotten.
    const end = Math.min(rec.expiresAt ?? Infinity, rec.graceUntil ?? Infinity);
    if (end === Infinity) await this.redis.persist(key);
    else await this.redis.pexpireat(key, end + DEAD_KEY_KEPT_MS);
    // A key re-saved under another customer must leave the old customer's list.
    if (previous !== null && previous !== rec.customer) await this.redis.srem(this.k.customerKeys(previous), rec.digest);
  }

  async revokeKey(digest: string): Promise<boolean> {
    const customer = await this.redis.hget(this.k.key(digest), 'customer');
    if (customer === null) return false;
    await this.redis.del(this.k.key(digest));
    await this.redis.srem(this.k.customerKeys(customer), digest);
    return true;
  }

  async listKeys(customer: string | undefined): Promise<KeyRecord[]> {
    let digests: string[];
    if (customer !== undefined) {
      digests = await this.redis.smembers(this.k.customerKeys(customer));
    } else {
      const found = await scanAll(this.redis, this.k.key('*'));
      digests = found.map((key) => key.slice(this.k.key('').length));
    }
    // An admin listing, not the request path: no per-lookup deadline.
    const records = await Promise.all(digests.map((d) => this.readKey(d)));
    // The per-customer set is an index, not the truth: trust the key's own record.
    return records.filter((r): r is KeyRecord => r !== undefined && (customer === undefined || r.customer === customer));
  }

  async touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    // One script per key (each key sits in its own slot); auto-pipelining sends them together.
    await Promise.all([...lastUsed].map(([digest, at]) => this.redis.sluiceTouchKey(this.k.key(digest), at)));
  }

  async findCustomer(id: string): Promise<CustomerRecord | undefined> {
    const h = await this.withinTimeout(this.redis.hgetall(this.k.customer(id)), 'customer lookup');
    if (h.plan === undefined && h.overrides === undefined) return undefined;
    return {
      id, plan: h.plan || undefined, overrides: h.overrides ? JSON.parse(h.overrides) as Record<string, unknown> : {}, ...(h.webhook_url ? { webhookUrl: h.webhook_url } : {}),
    };
  }

  async saveCustomer(rec: CustomerRecord): Promise<void> {
    await this.redis.hset(this.k.customer(rec.id), { plan: rec.plan ?? '', overrides: JSON.stringify(rec.overrides), webhook_url: rec.webhookUrl ?? '' });
  }

  /** Registers this gateway and, in the same round trip, samples the offset to Redis's clock. */
  async heartbeat(instanceId: string, ttlMs: number): Promise<number> {
    const sent = monotonicMs();
    const [n, time] = await Promise.all([this.redis.sluiceInstances(this.k.instances, instanceId, ttlMs), this.redis.time()]);
    this.clock.sample(sent, monotonicMs(), Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000));
    return n;
  }

  async publish(msg: Invalidation): Promise<void> {
    await this.redis.sluicePublish(this.k.invalidations, JSON.stringify(msg));
  }

  async subscribe(onMessage: (msg: Invalidation) => void): Promise<void> {
    // Plain PUBLISH reaches every node of a Cluster, so the subscriber may sit on any of them.
    const sub = createRedisClient(this.cfg, { ...CONNECTION, enableOfflineQueue: true, connectionName: 'sluice-sub' });
    sub.on('error', () => {});
    sub.on('message', (_channel: string, text: string) => {
      try { onMessage(JSON.parse(text) as Invalidation); } catch { /* not ours: ignore */ }
    });
    // A reconnect may have missed messages; drop everything cached rather than serve a revoked key.
    sub.on('ready', () => onMessage({ kind: 'customer', id: '*' }));
    this.subscriber = sub;
    await sub.subscribe(this.k.invalidations);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** close() was called: the connection's end is this process's doing. */
  get closing(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscriber?.disconnect();
    this.redis.disconnect();
  }
}
