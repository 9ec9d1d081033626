// Per-endpoint health, shared by every sluice-webhooks process through Redis: how many
// attempts to an endpoint failed since its last success, since when, and whether it is
// disabled because it has been failing for longer than --disable-after. A disabled
// endpoint's deliveries go straight to the dead letters (no request is sent); replaying
// its dead letters from the admin API enables it again.
//
// Keys (same hash tag as the queue, so one slot in a Cluster):
//   <prefix>:endpoint:<sha256(url), 32 hex>  hash: url, failures, failing_since, last_error, disabled_at
//   <prefix>:endpoints                       set of those hash keys, for listing
// A hash expires when its endpoint has not failed for a while (see failed()), so an
// endpoint nobody sends to any more leaves nothing behind.

import { createHash } from 'node:crypto';
import type { RedisClient } from '../../common/redis-client.js';

export interface EndpointState {
  readonly url: string;
  readonly failures: number;
  readonly failingSince: number;
  readonly lastError: string;
  /** Epoch ms when it was disabled; undefined while enabled. */
  readonly disabledAt: number | undefined;
}

export interface EndpointHealth {
  isDisabled(url: string): Promise<boolean>;
  /** Counts a failed attempt; true when the endpoint is (now) disabled. */
  failed(url: string, error: string, nowMs: number): Promise<boolean>;
  succeeded(url: string): Promise<void>;
  /** Forgets its failures and enables it. */
  enable(url: string): Promise<void>;
  list(): Promise<EndpointState[]>;
}

// Counts, sets failing_since on the first failure, disables once failing for longer than
// ARGV[4] ms, and keeps the hash for ARGV[5] ms after this failure. Returns 1 when disabled.
const FAILED_LUA = `
redis.call('HSET', KEYS[1], 'url', ARGV[1], 'last_error', ARGV[2])
redis.call('HSETNX', KEYS[1], 'failing_since', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if redis.call('HEXISTS', KEYS[1], 'disabled_at') == 1 then return 1 end
local since = tonumber(redis.call('HGET', KEYS[1], 'failing_since'))
if tonumber(ARGV[3]) - since >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'disabled_at', ARGV[3])
  return 1
end
return 0
`;

const FORGET_LUA = `
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], KEYS[1])
return 1
`;

type HealthClient = RedisClient & {
  sluiceEndpointFailed(key: string, set: string, url: string, error: string, now: number, disableAfterMs: number, keepMs: number): Promise<number>;
  sluiceEndpointForget(key: string, set: string): Promise<number>;
};

export function createEndpointHealth(client: RedisClient, prefix: string, disableAfterMs: number, keepMs: number): EndpointHealth {
  const c = client as HealthClient;
  if (typeof c.sluiceEndpointFailed !== 'function') {
    client.defineCommand('sluiceEndpointFailed', { numberOfKeys: 2, lua: FAILED_LUA });
    client.defineCommand('sluiceEndpointForget', { numberOfKeys: 2, lua: FORGET_LUA });
  }
  const set = `${prefix}:endpoints`;
  const keyOf = (url: string): string => `${prefix}:endpoint:${createHash('sha256').update(url).digest('hex').slice(0, 32)}`;
  const forget = async (url: string): Promise<void> => { await c.sluiceEndpointForget(keyOf(url), set); };
  return {
    async isDisabled(url) {
      return (await client.hexists(keyOf(url), 'disabled_at')) === 1;
    },
    async failed(url, error, nowMs) {
      // The error text is ours (an HTTP status or a transport message), never the receiver's body.
      return (await c.sluiceEndpointFailed(keyOf(url), set, url, error.slice(0, 200), nowMs, disableAfterMs, keepMs)) === 1;
    },
    succeeded: forget,
    enable: forget,
    async list() {
      const keys = await client.smembers(set);
      const out: EndpointState[] = [];
      for (const key of keys) {
        const h = await client.hgetall(key);
        // Expired since it was listed: drop it from the set too.
        if (h.url === undefined) { await client.srem(set, key); continue; }
        out.push({
          url: h.url, failures: Number(h.failures ?? 0), failingSince: Number(h.failing_since ?? 0), lastError: h.last_error ?? '',
          disabledAt: h.disabled_at === undefined ? undefined : Number(h.disabled_at),
        });
      }
      return out.sort((a, b) => a.failingSince - b.failingSince);
    },
  };
}
