// npm run bench:scaling: the README's scaling model, measured on this machine.
//   1. One gateway process on one Redis, under autocannon, for each of two plans (all
//      limits; all limits + in-flight): req/s, the gateway's and Redis's CPU time per
//      request (/proc), and Redis commands per request (INFO commandstats deltas): round
//      trips (commands the gateway sent) and executions (those plus the ones the Lua
//      scripts ran inside them).
//   2. One Redis shard alone: admit.lua via EVALSHA from redis-benchmark, random
//      customers, pipelined: decisions/s one single-threaded shard sustains.
//   3. The arithmetic for 50M calls a day with a 5x peak.
//   D=10 C=64 npm run bench:scaling
import autocannon from 'autocannon';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { keySchema } from '../gateway/store/key-schema.js';
import { spawnGateway, type GatewayProcess } from '../test/harness/gateway.js';
import { freePort } from '../test/harness/ports.js';
import { redisCli, startRedis } from '../test/harness/redis.js';

const D = Number(process.env.D ?? 10);
const C = Number(process.env.C ?? 64);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CONFIG = readFileSync(`${ROOT}load-tests/configs/scaling.yaml`, 'utf8');
const SCRIPTS = `${ROOT}lua-compat/redis/`;
const ADMIT_LUA = readFileSync(`${SCRIPTS}admit.lua`, 'utf8');
/** Commands the shared scripts call inside Redis; the gateway never sends these itself. */
const INSIDE_SCRIPTS = new Set(readdirSync(SCRIPTS).filter((f) => f.endsWith('.lua'))
  .flatMap((f) => [...readFileSync(`${SCRIPTS}${f}`, 'utf8').matchAll(/redis\.call\(['"](\w+)['"]/g)].map((m) => m[1]!.toLowerCase())));
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
const execFileP = promisify(execFile);

const CALLS_PER_DAY = 50_000_000;
const PEAK_FACTOR = 5;
/** Plan each process and shard to run at half its measured capacity at peak: room for a lost peer and a noisy neighbour. */
const TARGET_UTILISATION = 0.5;

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // After "pid (comm) ", utime and stime are the 12th and 13th fields.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** calls and usec per command from INFO commandstats. */
async function commandStats(port: number): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of (await redisCli(port, 'INFO', 'commandstats')).split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return out;
}

interface GatewayRun {
  readonly plan: string;
  readonly rps: number;
  readonly p99: number;
  readonly requests: number;
  readonly gatewayCpuUs: number;
  readonly redisCpuUs: number;
  readonly commands: Map<string, number>;
  /** Commands the gateway sent per request. */
  readonly roundTrips: number;
  /** Commands Redis executed per request, inside scripts included. */
  readonly executions: number;
  readonly evalshaUsec: number;
}

async function main(): Promise<void> {
  const backendPort = await freePort();
  const backend = spawn(process.execPath, [`${ROOT}dist/load-tests/echo-backend.js`, String(backendPort)], { stdio: 'ignore' });
  const redis = await startRedis();
  let gw: GatewayProcess | undefined;
  const runs: GatewayRun[] = [];
  let shardRps = 0;
  try {
    gw = await spawnGateway(CONFIG, { REDIS_URL: redis.url, SLUICE_UPSTREAM: `http://127.0.0.1:${backendPort}` });
    const { url, pid } = gw;
    for (const [plan, key] of [['quotas', 'scale-quotas'], ['quotas + in-flight', 'scale-inflight']] as const) {
      const load = (seconds: number) => autocannon({ url: `${url}/v1/ping`, connections: C, duration: seconds, headers: { 'x-api-key': key } });
      await load(2);
      const s0 = await commandStats(redis.port);
      const g0 = cpuSeconds(pid);
      const r0 = cpuSeconds(redis.pid);
      const r = await load(D);
      const g1 = cpuSeconds(pid);
      const r1 = cpuSeconds(redis.pid);
      const s1 = await commandStats(redis.port);
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${plan}: ${r.non2xx} non-2xx, ${r.errors} errors`);
      const requests = r.requests.total;
      const commands = new Map<string, number>();
      // INFO itself is the harness's, not the gateway's.
      for (const [name, v] of s1) if (name !== 'info') commands.set(name, v.calls - (s0.get(name)?.calls ?? 0));
      const evalsha = { calls: commands.get('evalsha') ?? 0, usec: (s1.get('evalsha')?.usec ?? 0) - (s0.get('evalsha')?.usec ?? 0) };
      runs.push({
        plan, rps: r.requests.average, p99: r.latency.p99, requests,
        gatewayCpuUs: ((g1 - g0) * 1e6) / requests,
        redisCpuUs: ((r1 - r0) * 1e6) / requests,
        commands,
        roundTrips: [...commands].filter(([c]) => !INSIDE_SCRIPTS.has(c)).reduce((a, [, n]) => a + n, 0) / requests,
        executions: [...commands.values()].reduce((a, b) => a + b, 0) / requests,
        evalshaUsec: evalsha.calls > 0 ? evalsha.usec / evalsha.calls : 0,
      });
      process.stderr.write(`${plan}: ${Math.round(r.requests.average)} req/s\n`);
    }

    // One shard on its own: as many admit decisions as redis-benchmark can make it do.
    const sha = (await redisCli(redis.port, 'SCRIPT', 'LOAD', ADMIT_LUA)).trim();
    const k = keySchema('sluice:');
    const subject = 'c__rand_int__';
    const { stdout } = await execFileP('redis-benchmark', [
      '-h', '127.0.0.1', '-p', String(redis.port), '-c', '50', '-P', '16', '-n', String(Math.max(100_000, D * 100_000)), '-r', '1000000', '--csv',
      'EVALSHA', sha, '3', k.bucket(subject), k.counters(subject), k.leases(subject),
      '100', '200', '1', '1000000', '10000000', '0', 'lease', '60000',
    ], { timeout: 300_000 });
    const last = stdout.trim().split('\n').pop()!;
    shardRps = Number(JSON.parse(`[${last}]`)[1]);
  } finally {
    await gw?.stop();
    await redis.stop();
    backend.kill('SIGTERM');
    if (backend.exitCode === null) await once(backend, 'exit');
  }

  const avg = CALLS_PER_DAY / 86_400;
  const peak = avg * PEAK_FACTOR;
  const worstGw = runs.reduce((a, b) => (b.rps < a.rps ? b : a));
  const worstRedis = runs.reduce((a, b) => (b.redisCpuUs > a.redisCpuUs ? b : a));
  const gwCapacity = worstGw.rps;
  const gwCoreCapacity = 1e6 / worstGw.gatewayCpuUs;
  const shardCapacity = Math.min(shardRps, 1e6 / worstRedis.redisCpuUs);
  const gateways = Math.ceil(peak / (gwCapacity * TARGET_UTILISATION));
  const shards = Math.ceil(peak / (shardCapacity * TARGET_UTILISATION));
  const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

  const stamp = new Date().toISOString();
  const table = [
    `Sluice scaling model ${stamp}: autocannon C=${C} D=${D}s against one gateway process on one redis-server, ${cpus().length} cores (shared by load generator, gateway, Redis and echo backend), node ${process.version}`,
    '',
    '| plan | req/s (one process) | p99 ms | gateway CPU µs/req | Redis CPU µs/req | round trips/req | Redis executions/req | sent by the gateway, per request | EVALSHA µs in Redis |',
    '|---|---:|---:|---:|---:|---:|---:|---|---:|',
    ...runs.map((r) => `| ${r.plan} | ${f(r.rps)} | ${r.p99} | ${f(r.gatewayCpuUs, 1)} | ${f(r.redisCpuUs, 1)} | ${f(r.roundTrips, 3)} | ${f(r.executions, 2)} | ${[...r.commands].filter(([c, n]) => n > 0 && !INSIDE_SCRIPTS.has(c)).map(([c, n]) => `${c} ${f(n / r.requests, 3)}`).join(', ')} | ${f(r.evalshaUsec, 2)} |`),
    '',
    `One Redis shard alone (redis-benchmark, EVALSHA admit.lua, 50 clients, pipeline 16, random customers): **${f(shardRps)} decisions/s**.`,
    '',
    '| quantity | value | from |',
    '|---|---:|---|',
    `| average load | ${f(avg)} req/s | ${f(CALLS_PER_DAY)} / 86 400 s |`,
    `| peak load | ${f(peak)} req/s | ${PEAK_FACTOR} × average |`,
    `| one gateway process | ${f(gwCapacity)} req/s | measured, ${worstGw.plan} (CPU-bound at ${f(gwCoreCapacity)} req/s: 10⁶ / ${f(worstGw.gatewayCpuUs, 1)} µs) |`,
    `| one Redis shard | ${f(shardCapacity)} req/s | min(redis-benchmark decisions/s, 10⁶ / ${f(worstRedis.redisCpuUs, 1)} Redis CPU µs per request under the gateway, ${worstRedis.plan}) |`,
    `| gateway processes for peak | ${gateways} (${f(peak / gwCapacity * 100, 1)}% of one) | ⌈peak / (process × ${TARGET_UTILISATION})⌉ |`,
    `| Redis shards for peak | ${shards} (${f(peak / shardCapacity * 100, 1)}% of one) | ⌈peak / (shard × ${TARGET_UTILISATION})⌉ |`,
  ].join('\n');
  process.stdout.write(`${table}\n`);
  const outDir = `${ROOT}load-tests/out`;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(`${outDir}/scaling-${stamp.replace(/[:.]/g, '')}.md`, `${table}\n`);
}

await main();
