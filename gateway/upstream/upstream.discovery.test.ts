import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { stringify } from 'yaml';
import { startBackend } from '../../test/harness/backend.js';
import { sha256, testConfig, type TestConfigOptions } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { startRedis, startRedisCluster, startRedisSentinel, type RedisProcess } from '../../test/harness/redis.js';
import { parseConfig } from '../config/load.js';
import { registryKeys } from '../../common/registry.js';

// Backends registered in Redis, end to end: real redis-server, the real gateway CLI, the
// real sluice-backend CLI registering itself, and a static echo target alongside.
const BACKEND_CLI = fileURLToPath(new URL('../../backends/cli.js', import.meta.url));
const KEY = 'k-discovery';
const TTL_MS = 1000;

interface Backend { child: ChildProcess; url: string; registeredAt: number; lines: Record<string, unknown>[] }

/**
 * A sluice-backend registering under upstream `main`, in a standalone Redis by url or in
 * the store of a gateway config file; resolves once it logged its registration.
 */
async function startImageBackend(where: string | { storeFile: string }): Promise<Backend> {
  const target = typeof where === 'string' ? ['--register-redis', where] : ['--register-store', where.storeFile];
  const child = spawn(process.execPath, [BACKEND_CLI, '--port', '0', '--face-workers', '0', '--no-reexec', '--concurrency', '2',
    ...target, '--register-upstream', 'main', '--register-ttl-ms', String(TTL_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`backend did not register within 15 s: ${stderr}`)), 15_000);
    child.once('exit', (code) => { clearTimeout(t); reject(new Error(`backend exited ${code}: ${stderr}`)); });
    createInterface({ input: child.stdout! }).on('line', (text) => {
      try { lines.push(JSON.parse(text) as Record<string, unknown>); } catch { return; }
      const l = lines.at(-1)!;
      if (l.msg === 'registered in redis') { clearTimeout(t); resolve({ child, url: l.url as string, registeredAt: performance.now(), lines }); }
    });
  });
}

/** Which target answered: the echo backend names itself, the image backend does not. */
async function who(gw: GatewayProcess): Promise<{ status: number; by: string }> {
  try {
    const res = await request(`${gw.url}/healthz`, { headers: { 'x-api-key': KEY } });
    const text = await res.body.text();
    let by = 'image';
    try { by = (JSON.parse(text) as { backend?: string }).backend ?? 'image'; } catch { /* the image backend's answer */ }
    return { status: res.statusCode, by };
  } catch (err) {
    return { status: 0, by: (err as Error).message };
  }
}

/** A gateway whose upstream `main` has the static echo target and discovers registered backends. */
function discoveringGateway(echoUrl: string, store: NonNullable<TestConfigOptions['store']>): Promise<GatewayProcess> {
  return spawnGateway(testConfig({
    upstreams: [echoUrl],
    upstream: { balancer: 'round_robin', discover: { poll_interval_ms: 200 } },
    store,
    keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
    plans: { test: { rate: 100000, burst: 100000 } },
    log: { access: false },
  }));
}

async function killAll(children: readonly ChildProcess[]): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) { c.kill('SIGKILL'); await once(c, 'exit'); }
}

// The gateway logs ISO times, the backend epoch ms.
function epochMs(t: unknown): number {
  return typeof t === 'number' ? t : Date.parse(String(t));
}

// Only lines logged from now on: a new backend may get the port of one that came before.
function fresh(gw: GatewayProcess, msg: string, url: string) {
  const from = gw.lines.length;
  return (l: Record<string, unknown>): boolean => l.msg === msg && l.target === url && gw.lines.indexOf(l) >= from;
}

describe('backends registered in Redis', { timeout: 180_000 }, () => {
  let redis: RedisProcess;
  let echo: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;
  let client: Redis;
  const spawned: ChildProcess[] = [];

  before(async () => {
    redis = await startRedis();
    echo = await startBackend();
    client = new Redis(redis.url);
    gw = await discoveringGateway(echo.url, { kind: 'redis', url: redis.url });
  });
  after(async () => {
    await gw?.stop();
    await killAll(spawned);
    client?.disconnect();
    await echo?.close();
    await redis?.stop();
  });

  it('a backend started after the gateway gets traffic within 1 s; SIGKILL drops it within 1 s of its expiry', async (t) => {
    const echoName = `backend-${new URL(echo.url).port}`;
    assert.deepEqual(await who(gw), { status: 200, by: echoName }, 'the static target serves before any backend registers');

    const b = await startImageBackend(redis.url);
    spawned.push(b.child);
    const gone = fresh(gw, 'discovered target left the upstream', b.url);
    let joinMs = -1;
    for (let i = 0; i < 400 && joinMs < 0; i++) {
      const r = await who(gw);
      if (r.by === 'image') joinMs = performance.now() - b.registeredAt;
      else if (performance.now() - b.registeredAt > 3000) break;
    }
    t.diagnostic(`join: first request routed to the new backend ${joinMs.toFixed(0)} ms after it registered`);
    assert.ok(joinMs >= 0 && joinMs < 1000, `routed after ${joinMs} ms`);

    // Both take traffic now (round robin): the static target was not displaced.
    const mix = await Promise.all(Array.from({ length: 10 }, () => who(gw)));
    assert.ok(mix.some((r) => r.by === 'image') && mix.some((r) => r.by === echoName), JSON.stringify(mix));

    const k = registryKeys('sluice:', 'main');
    const killedAt = performance.now();
    b.child.kill('SIGKILL');
    const [score, time] = await Promise.all([client.zscore(k.members, b.url), client.time()]);
    const untilExpiry = Number(score) - (Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000));
    // Requests meanwhile: the dead target may fail some (retries are another change's business), counted and reported.
    let failed = 0;
    let sent = 0;
    let stop = false;
    const load = (async () => { while (!stop && sent < 2000) { sent++; if ((await who(gw)).status !== 200) failed++; } })();
    await gw.waitForLine(gone, TTL_MS + 3000);
    const goneMs = performance.now() - killedAt;
    stop = true;
    await load;
    t.diagnostic(`kill -9: out of rotation ${goneMs.toFixed(0)} ms after the kill, ${(goneMs - untilExpiry).toFixed(0)} ms after its registration expired; ${failed}/${sent} requests failed meanwhile`);
    assert.ok(goneMs - untilExpiry < 1000, `dropped ${goneMs - untilExpiry} ms after expiry`);
    assert.equal(await client.zscore(k.members, b.url), null, 'the expired member was reaped');

    const after = await Promise.all(Array.from({ length: 20 }, () => who(gw)));
    assert.deepEqual(after.filter((r) => r.status !== 200 || r.by !== echoName), [], 'only the static target serves once the dead one is out');
    assertGatewayHealthy(gw);
  });

  it('a clean SIGTERM deregisters at once', async (t) => {
    const from = gw.lines.length;
    const b = await startImageBackend(redis.url);
    spawned.push(b.child);
    await gw.waitForLine((l) => l.msg === 'discovered target joined the upstream' && l.target === b.url && gw.lines.indexOf(l) >= from);
    const leaving = fresh(gw, 'discovered target left the upstream', b.url);
    const exited = once(b.child, 'exit') as Promise<[number | null]>;
    const t0 = performance.now();
    b.child.kill('SIGTERM');
    // Generous deadline: on a loaded machine the backend may be slow to run its handler;
    // what shows deregistration (not expiry) did it is the gap after its 'deregistered' line.
    const gone = await gw.waitForLine(leaving, 3 * TTL_MS).catch((err: Error) => {
      throw new Error(`${err.message}\nbackend: ${b.lines.map((l) => JSON.stringify(l)).join('\n')}`);
    });
    const ms = performance.now() - t0;
    const [code, signal] = await exited as unknown as [number | null, string | null];
    assert.equal(code, 0, `backend exited ${code}/${signal}: ${b.lines.map((l) => JSON.stringify(l)).join('\n')}`);
    const dereg = b.lines.find((l) => l.msg === 'deregistered');
    assert.ok(dereg !== undefined, 'the backend deregistered');
    const lag = epochMs(gone.time) - epochMs(dereg.time);
    t.diagnostic(`SIGTERM: out of rotation ${ms.toFixed(0)} ms after the signal, ${lag} ms after the backend deregistered`);
    assert.ok(lag < 300, `the gateway dropped it ${lag} ms after deregistration`);
    const results = await Promise.all(Array.from({ length: 10 }, () => who(gw)));
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results));
  });

  it('discover is refused with the memory store, and lets an upstream start without static targets', () => {
    const yaml = (store: string): string => `
store: ${store}
plans: { p: { rate: 1 } }
upstreams: { img: { discover: true } }
routes: [{ name: r, prefix: /, upstream: img }]
`;
    assert.throws(() => parseConfig(yaml('{ kind: memory }')), (err: Error & { errors?: string[] }) =>
      (err.errors ?? []).some((e) => /upstreams\.img\.discover.*needs store\.kind redis/.test(e)));
    const cfg = parseConfig(yaml('{ kind: redis, url: "redis://127.0.0.1:6379" }'));
    assert.deepEqual(cfg.upstreams.get('img')!.discover, { name: 'img', poll_interval_ms: 250 });
    assert.equal(cfg.upstreams.get('img')!.targets.length, 0);
  });
});

// The same registry on the HA deployments: the backend reads the store section of a
// gateway config file (--register-store), the gateway discovers through its own store.
type HaStore = { kind: 'redis'; mode: 'sentinel'; sentinels: string[]; sentinel_name: string } | { kind: 'redis'; mode: 'cluster'; nodes: string[] };
const haTopologies: { name: string; start(): Promise<{ store: HaStore; stop(): Promise<void> }> }[] = [
  { name: 'Redis Sentinel', async start() {
    const r = await startRedisSentinel();
    return { store: { kind: 'redis', mode: 'sentinel', sentinels: r.sentinels.map((x) => `${x.host}:${x.port}`), sentinel_name: r.name }, stop: () => r.stop() };
  } },
  { name: 'a 3+3 Redis Cluster', async start() {
    const r = await startRedisCluster();
    return { store: { kind: 'redis', mode: 'cluster', nodes: [...r.nodes] }, stop: () => r.stop() };
  } },
];

for (const topology of haTopologies) describe(`backends registered in ${topology.name}`, { timeout: 180_000 }, () => {
  let redis: Awaited<ReturnType<(typeof haTopologies)[number]['start']>>;
  let echo: Awaited<ReturnType<typeof startBackend>>;
  let gw: GatewayProcess;
  let dir: string;
  const spawned: ChildProcess[] = [];

  before(async () => {
    redis = await topology.start();
    echo = await startBackend();
    dir = mkdtempSync(join(tmpdir(), 'sluice-discovery-'));
    gw = await discoveringGateway(echo.url, redis.store);
  });
  after(async () => {
    await gw?.stop();
    await killAll(spawned);
    await echo?.close();
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('a backend given the gateways\' store section joins the rotation, and leaves it on SIGTERM', async (t) => {
    const storeFile = join(dir, 'gateway.yaml');
    writeFileSync(storeFile, stringify({ store: redis.store }));
    const from = gw.lines.length;
    const b = await startImageBackend({ storeFile });
    spawned.push(b.child);
    await gw.waitForLine((l) => l.msg === 'discovered target joined the upstream' && l.target === b.url && gw.lines.indexOf(l) >= from);
    const mix = await Promise.all(Array.from({ length: 10 }, () => who(gw)));
    assert.ok(mix.some((r) => r.by === 'image') && mix.every((r) => r.status === 200), JSON.stringify(mix));

    const leaving = fresh(gw, 'discovered target left the upstream', b.url);
    const exited = once(b.child, 'exit');
    b.child.kill('SIGTERM');
    const gone = await gw.waitForLine(leaving, 3 * TTL_MS);
    // Its 'deregistered' line may come after the gateway already acted on the message.
    await exited;
    const dereg = b.lines.find((l) => l.msg === 'deregistered');
    assert.ok(dereg !== undefined, 'the backend deregistered');
    t.diagnostic(`${topology.name}: dropped ${epochMs(gone.time) - epochMs(dereg.time)} ms after the backend deregistered`);
    assert.ok(epochMs(gone.time) - epochMs(dereg.time) < 300, 'the deregistration was published, not waited out');
    const after = await Promise.all(Array.from({ length: 10 }, () => who(gw)));
    assert.deepEqual(after.filter((r) => r.status !== 200 || r.by === 'image'), [], 'only the static target serves once it left');
  });
});
