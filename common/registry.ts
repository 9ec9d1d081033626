import type { StoreConfig } from './store-config.js';
import { createRedisClient, type RedisClient } from './redis-client.js';

// Backends registered in Redis: the keys and scripts both sides share, so the backend
// (sluice-backend --register-redis) and the gateway (upstreams.N.discover) cannot drift.
// lua-compat/README.md documents the keys.

/** What a backend says about itself when it registers. */
export interface Member {
  /** Origin the gateways connect to, e.g. http://10.0.0.5:7001; also the member's id. */
  readonly url: string;
  readonly weight: number;
  /** Requests it works on or queues at once (concurrency + queue); 0 when unknown. */
  readonly capacity: number;
}

export interface RegistryKeys {
  /** Sorted set: member url → heartbeat expiry (ms, Redis clock). */
  readonly members: string;
  /** Hash: member url → Member as JSON. */
  readonly details: string;
  /**
   * Pub/sub channel: the upstream's name, published when a member joins or leaves. Passed
   * to the scripts as an argument, not a key: a channel has no slot, and a Cluster refuses
   * a script whose keys are in different slots.
   */
  readonly changed: string;
}

/** The registry's keys under the store prefix; lua-compat/README.md lists them with the rest of the key schema. */
export function registryKeys(prefix: string, upstream: string): RegistryKeys {
  // The upstream's name is a hash tag: both keys in one Cluster slot, for one script.
  return { members: `${prefix}upstream:{${upstream}}:members`, details: `${prefix}upstream:{${upstream}}:details`, changed: `${prefix}upstream:changed` };
}

// Expiry on the Redis clock, not the backend's: gateways compare against the same clock,
// so a backend whose clock is off can neither live forever nor vanish early.
// ARGV: url, details JSON, ttl ms, upstream name, channel. Publishes only when the member
// is new or its details changed, so heartbeats cost gateways nothing.
const REGISTER_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old ~= ARGV[2] then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
if added == 1 or old ~= ARGV[2] then redis.call('PUBLISH', ARGV[5], ARGV[4]) end
return added
`;

const DEREGISTER_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[2])
return 1
`;

// Reaps the expired (any gateway may: the result is the same whoever does it) and
// answers the details of the live ones.
const MEMBERS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  redis.call('HDEL', KEYS[2], unpack(dead))
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(live))
`;

interface RegistryCommands {
  sluiceRegister(members: string, details: string, url: string, json: string, ttlMs: number, upstream: string, changed: string): Promise<number>;
  sluiceDeregister(members: string, details: string, url: string, upstream: string, changed: string): Promise<number>;
  sluiceMembers(members: string, details: string): Promise<(string | null)[]>;
}

export type RegistryClient = RedisClient & RegistryCommands;

/**
 * An ioredis client onto the gateways' store (standalone, Sentinel or Cluster, with its
 * password and TLS) with the registry scripts defined; commands fail at once while disconnected.
 */
export function registryClient(store: StoreConfig, name: string): RegistryClient {
  const redis = createRedisClient(store, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectionName: name,
  }) as RegistryClient;
  redis.defineCommand('sluiceRegister', { numberOfKeys: 2, lua: REGISTER_LUA });
  redis.defineCommand('sluiceDeregister', { numberOfKeys: 2, lua: DEREGISTER_LUA });
  redis.defineCommand('sluiceMembers', { numberOfKeys: 2, lua: MEMBERS_LUA });
  // Errors surface on each command; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/** The live members of one upstream (expired ones reaped on the way). */
export async function liveMembers(redis: RegistryClient, k: RegistryKeys): Promise<Member[]> {
  const rows = await redis.sluiceMembers(k.members, k.details);
  const out: Member[] = [];
  for (const row of rows) {
    if (row === null) continue;
    try {
      const m = JSON.parse(row) as Partial<Member>;
      if (typeof m.url === 'string' && Number.isInteger(m.weight) && m.weight! >= 1) {
        out.push({ url: m.url, weight: m.weight!, capacity: Number.isInteger(m.capacity) ? m.capacity! : 0 });
      }
    } catch {
      // Someone else's garbage under our key: not a member we can route to.
    }
  }
  return out;
}

export interface RegistrationOptions {
  /** The gateways' store; its prefix is the registry's too. */
  readonly store: StoreConfig;
  readonly upstream: string;
  readonly member: Member;
  readonly ttlMs: number;
  /** Told when a heartbeat fails, and when one succeeds again after failing. */
  readonly onTrouble?: (err: Error | undefined) => void;
}

/**
 * A backend's registration: a heartbeat every ttl/3 (two can be lost before gateways
 * drop it), removed at once by deregister() on a clean shutdown.
 */
export class Registration {
  private readonly redis: RegistryClient;
  private readonly k: RegistryKeys;
  private readonly json: string;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(private readonly o: RegistrationOptions) {
    this.redis = registryClient(o.store, 'sluice-backend');
    this.k = registryKeys(o.store.prefix, o.upstream);
    this.json = JSON.stringify(o.member);
  }

  /** Registers once (resolving when Redis took it, or rejecting), then keeps heartbeating either way. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.beat().catch(() => {}), Math.max(50, Math.floor(this.o.ttlMs / 3)));
    await once(this.redis, 'ready', 5000);
    await this.beat();
  }

  private async beat(): Promise<void> {
    try {
      await this.redis.sluiceRegister(this.k.members, this.k.details, this.o.member.url, this.json, this.o.ttlMs, this.o.upstream, this.k.changed);
      if (this.failing) { this.failing = false; this.o.onTrouble?.(undefined); }
    } catch (err) {
      if (!this.failing) { this.failing = true; this.o.onTrouble?.(err as Error); }
      throw err;
    }
  }

  async deregister(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.redis.sluiceDeregister(this.k.members, this.k.details, this.o.member.url, this.o.upstream, this.k.changed);
    } finally {
      this.redis.disconnect();
    }
  }
}

function once(redis: RedisClient, event: 'ready', timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { redis.off(event, done); reject(new Error(`redis not ${event} within ${timeoutMs} ms`)); }, timeoutMs);
    const done = (): void => { clearTimeout(t); resolve(); };
    redis.once(event, done);
  });
}
