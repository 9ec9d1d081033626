import type { RedisClient } from '../../common/redis-client.js';
import { DAY_MS, isoDate } from './calendar.js';
import type { KeySchema } from './key-schema.js';
import type { IdempotencyState, StoredResponse, UsageRow } from './types.js';

// The Redis store's side of credits (lua-compat/README.md lists the keys):
//   P usage:{C}:<yyyy-mm-dd>   hash of counters, one per customer and UTC day
//   P usage:idx:<yyyy-mm-dd>   set of the customers with usage that day
//   P qw:{S}:<period>:<pct>    a quota threshold crossed (SET NX: one winner per period)
//   P idem:{C}:<hash of key>   an Idempotency-Key's claim and kept response
// These scripts are not shared with the nginx module, so they live here, inline (as
// common/registry.ts keeps its own).

// ARGV[1]: expire-at (unix ms); then counter name, increment pairs.
const USAGE_ADD_LUA = `
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1`;

// ARGV: fingerprint, claim token, lock ms. Reply: {'new'} | {'mismatch'} | {'running'} |
// {'done', status, headers, body or false (not kept: over the size limit)}.
const IDEM_BEGIN_LUA = `
local r = redis.call('HMGET', KEYS[1], 'state', 'fp', 'status', 'headers', 'body')
if not r[1] then
  redis.call('HSET', KEYS[1], 'state', 'r', 'fp', ARGV[1], 'token', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'new'}
end
if r[2] ~= ARGV[1] then return {'mismatch'} end
if r[1] == 'r' then return {'running'} end
return {'done', r[3], r[4], r[5]}`;

// ARGV: token, ttl ms, status, headers (JSON), kept ('1'/'0'), body. Only the claim's holder finishes it.
const IDEM_FINISH_LUA = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'd', 'status', ARGV[3], 'headers', ARGV[4])
if ARGV[5] == '1' then redis.call('HSET', KEYS[1], 'body', ARGV[6]) else redis.call('HDEL', KEYS[1], 'body') end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

const IDEM_ABANDON_LUA = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type BeginReply = [Buffer, Buffer?, Buffer?, Buffer?];

interface CreditCommands {
  sluiceUsageAdd(key: string, ...argv: (string | number)[]): Promise<number>;
  sluiceIdemBeginBuffer(key: string, fingerprint: string, token: string, lockMs: number): Promise<BeginReply>;
  sluiceIdemFinish(key: string, token: string, ttlMs: number, status: number, headers: string, kept: string, body: Buffer | string): Promise<number>;
  sluiceIdemAbandon(key: string, token: string): Promise<number>;
}

export class RedisCredits {
  private readonly r: RedisClient & CreditCommands;

  constructor(redis: RedisClient, private readonly k: KeySchema) {
    redis.defineCommand('sluiceUsageAdd', { numberOfKeys: 1, lua: USAGE_ADD_LUA });
    redis.defineCommand('sluiceIdemBegin', { numberOfKeys: 1, lua: IDEM_BEGIN_LUA });
    redis.defineCommand('sluiceIdemFinish', { numberOfKeys: 1, lua: IDEM_FINISH_LUA });
    redis.defineCommand('sluiceIdemAbandon', { numberOfKeys: 1, lua: IDEM_ABANDON_LUA });
    this.r = redis as RedisClient & CreditCommands;
  }

  /** One script per customer-day, all in one auto-pipelined round trip (per node on a Cluster). */
  async addUsage(rows: readonly UsageRow[], retentionDays: number): Promise<void> {
    const calls: Promise<unknown>[] = [];
    const days = new Map<string, { customers: string[]; expireAt: number }>();
    for (const row of rows) {
      const date = isoDate(row.day);
      const expireAt = (row.day + 1 + retentionDays) * DAY_MS;
      const argv: (string | number)[] = [expireAt];
      for (const [name, n] of Object.entries(row.counts)) if (n !== 0) argv.push(name, n);
      calls.push(this.r.sluiceUsageAdd(this.k.usage(row.customer, date), ...argv));
      const d = days.get(date) ?? { customers: [], expireAt };
      d.customers.push(row.customer);
      days.set(date, d);
    }
    for (const [date, d] of days) {
      calls.push(this.r.sadd(this.k.usageIndex(date), ...d.customers), this.r.pexpireat(this.k.usageIndex(date), d.expireAt));
    }
    await Promise.all(calls);
  }

  async readUsage(customer: string | undefined, fromDay: number, toDay: number): Promise<UsageRow[]> {
    const days = Array.from({ length: Math.max(0, toDay - fromDay + 1) }, (_, i) => fromDay + i);
    const who = await Promise.all(days.map(async (day) => {
      const customers = customer !== undefined ? [customer] : (await this.r.smembers(this.k.usageIndex(isoDate(day)))).sort();
      return customers.map((c) => ({ customer: c, day }));
    }));
    const wanted = who.flat();
    const hashes = await Promise.all(wanted.map((w) => this.r.hgetall(this.k.usage(w.customer, isoDate(w.day)))));
    const out: UsageRow[] = [];
    wanted.forEach((w, i) => {
      const h = hashes[i]!;
      if (Object.keys(h).length === 0) return;
      out.push({ customer: w.customer, day: w.day, counts: Object.fromEntries(Object.entries(h).map(([name, v]) => [name, Number(v)])) });
    });
    return out;
  }

  async markThreshold(subject: string, period: string, percent: number, ttlMs: number): Promise<boolean> {
    return (await this.r.set(this.k.quotaMark(subject, period, percent), '1', 'PX', ttlMs, 'NX')) === 'OK';
  }

  async idempotencyBegin(customer: string, key: string, fingerprint: string, token: string, lockMs: number): Promise<IdempotencyState> {
    const r = await this.r.sluiceIdemBeginBuffer(this.k.idempotency(customer, key), fingerprint, token, lockMs);
    const kind = r[0].toString();
    if (kind === 'new' || kind === 'mismatch' || kind === 'running') return { kind };
    return { kind: 'done', response: { status: Number(r[1]!.toString()), headers: JSON.parse(r[2]!.toString()) as string[], body: r[3] ?? undefined } };
  }

  async idempotencyFinish(customer: string, key: string, token: string, response: StoredResponse, ttlMs: number): Promise<void> {
    const kept = response.body !== undefined;
    await this.r.sluiceIdemFinish(this.k.idempotency(customer, key), token, ttlMs, response.status, JSON.stringify(response.headers), kept ? '1' : '0', response.body ?? '');
  }

  async idempotencyAbandon(customer: string, key: string, token: string): Promise<void> {
    await this.r.sluiceIdemAbandon(this.k.idempotency(customer, key), token);
  }
}
