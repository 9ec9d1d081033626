import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { request } from 'undici';

// What a request costs: Redis commands and Redis CPU (INFO commandstats and INFO cpu,
// before and after), and the gateway's CPU from /proc when it runs on this machine.

export interface RedisSnapshot {
  readonly calls: ReadonlyMap<string, number>;
  /** used_cpu_sys + used_cpu_user, seconds. */
  readonly cpuS: number;
}

/** Commands the measurement itself sends; never counted as the requests' cost. */
const OWN_COMMANDS = new Set(['info', 'client', 'hello', 'select', 'ping']);
/** Linux reports process times in clock ticks of 1/100 s on every common build. */
const CLK_TCK = 100;

export async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const [stats, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const calls = new Map<string, number>();
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (!OWN_COMMANDS.has(m[1]!)) calls.set(m[1]!, Number(m[2]));
  }
  const num = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, cpuS: num('used_cpu_sys') + num('used_cpu_user') };
}

export interface RedisDelta {
  readonly commands: number;
  readonly byCommand: Record<string, number>;
  readonly cpuMs: number;
}

export function redisDelta(a: RedisSnapshot, b: RedisSnapshot): RedisDelta {
  const byCommand: Record<string, number> = {};
  let commands = 0;
  for (const [cmd, n] of b.calls) {
    const d = n - (a.calls.get(cmd) ?? 0);
    if (d > 0) { byCommand[cmd] = d; commands += d; }
  }
  return { commands, byCommand, cpuMs: (b.cpuS - a.cpuS) * 1000 };
}

/** utime + stime of a process, ms; undefined when it is not on this machine (or gone). */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
  } catch {
    return undefined;
  }
}

export interface ProbeResult {
  readonly class: 'admitted' | '429' | '401';
  readonly requests: number;
  /** How many of the probe's answers were of its class (the rest are still counted). */
  readonly ofClass: number;
  readonly commandsPerRequest: number;
  readonly byCommand: Record<string, number>;
}

/**
 * Commands per request of one class: `count` requests, one at a time, each with the key
 * `keyFor(i)` gives (one that gets that answer), between two snapshots. Nothing else
 * may use this Redis meanwhile.
 */
export async function probeClass(redis: Redis, cls: ProbeResult['class'], url: string, method: string, headers: Record<string, string>,
  body: Buffer | undefined, count: number, keyFor: (i: number) => string): Promise<ProbeResult> {
  const before = await redisSnapshot(redis);
  let ofClass = 0;
  for (let i = 0; i < count; i++) {
    const res = await request(url, { method: method as 'GET', headers: { ...headers, 'x-api-key': keyFor(i) }, body, headersTimeout: 10_000, bodyTimeout: 10_000 });
    await res.body.dump({ limit: Number.MAX_SAFE_INTEGER });
    const got = res.statusCode === 429 ? '429' : res.statusCode === 401 ? '401' : 'admitted';
    if (got === cls) ofClass++;
  }
  const d = redisDelta(before, await redisSnapshot(redis));
  return { class: cls, requests: count, ofClass, commandsPerRequest: d.commands / count, byCommand: d.byCommand };
}

export function connectRedis(url: string): Redis {
  return new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 5000 });
}
