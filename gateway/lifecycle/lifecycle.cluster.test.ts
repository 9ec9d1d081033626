import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { stringify } from 'yaml';
import { ADMIN_TOKEN, sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startLoad } from '../../test/harness/load.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';

// `--workers 2` on a Redis store: two real workers behind one primary, under load.
const KEY = 'cluster-key';
const CONCURRENCY = 8;

describe('cluster: --workers 2', { timeout: 180_000 }, () => {
  let redis: RedisProcess;
  let backend: Server;
  let gw: GatewayProcess;
  let upstream: string;

  const config = (burst: number): Record<string, unknown> => testConfig({
    upstreams: [upstream],
    store: { kind: 'redis', url: redis.url, timeout_ms: 200 },
    plans: { test: { rate: 1_000_000, burst } },
    keys: [{ digest: sha256(KEY), customer: 'c1', plan: 'test' }],
    log: { access: false },
  });
  const workerPids = (): number[] => gw.lines.filter((l) => l.msg === 'worker ready').map((l) => l.worker_pid as number);

  before(async () => {
    redis = await startRedis();
    backend = createServer((req, res) => { req.resume(); res.end('ok'); });
    backend.keepAliveTimeout = 60_000;
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    upstream = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    gw = await spawnGateway(config(1_000_000), {}, ['--workers', '2']);
  });
  after(async () => {
    await gw?.stop();
    backend?.closeAllConnections();
    backend?.close();
    await redis?.stop();
  });

  it('the memory store with more than one worker is refused at start, with the reason', async () => {
    const cfg = testConfig({ upstreams: [upstream] });
    await assert.rejects(spawnGateway(cfg, {}, ['--workers', '2']), /memory.*admit 2× every limit/s);
  });

  it('the primary serves /healthz, proxies /readyz and the admin API to a worker, and /metrics sums every worker', async () => {
    assert.equal(workerPids().length, 2);
    const health = await request(`${gw.adminUrl}/healthz`);
    assert.deepEqual(await health.body.json(), { status: 'ok', workers: 2 });
    const ready = await request(`${gw.adminUrl}/readyz`);
    assert.equal(ready.statusCode, 200, await ready.body.text());
    const created = await request(`${gw.adminUrl}/admin/keys`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ customer: 'c2', plan: 'test' }),
    });
    assert.equal(created.statusCode, 201);
    const { key } = await created.body.json() as { key: string };

    const before = metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_requests_total');
    // A new connection per request, so the kernel can give them to either worker.
    const N = 40;
    for (let i = 0; i < N; i++) {
      const r = await request(`${gw.url}/x`, { headers: { 'x-api-key': i % 2 === 0 ? KEY : key }, reset: true });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
    }
    const text = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(text, 'sluice_requests_total') - before, N, 'requests_total sums both workers');
    assert.equal(metricValue(text, 'sluice_workers'), 2);
  });

  it('kill -9 of one worker during load: a new worker replaces it, the other keeps serving', async (t) => {
    const [victim, survivor] = workerPids().slice(-2);
    const load = startLoad(`${gw.url}/x`, { concurrency: CONCURRENCY, headers: { 'x-api-key': KEY } });
    await pollUntil(async () => (load.done() > 300 ? true : undefined), 5000);
    const linesAtKill = gw.lines.length;
    const log = (): string => gw.lines.filter((l) => l.msg !== 'request').map((l) => JSON.stringify(l)).join('\n');
    assert.ok(alive(victim!) && alive(survivor!), `both workers alive before the kill (${victim}, ${survivor}); log:\n${log()}`);
    process.kill(victim!, 'SIGKILL');
    const replaced = await gw.waitForLine((l) => l.msg === 'worker ready' && !([victim, survivor] as unknown[]).includes(l.worker_pid));
    const atReplace = load.done();
    await pollUntil(async () => (load.done() > atReplace + 300 ? true : undefined), 5000);
    const r = await load.stop();
    const since = (): string => gw.lines.slice(linesAtKill).map((l) => JSON.stringify(l)).join('\n');
    assert.notEqual(replaced.worker_pid, victim);
    assert.ok(alive(survivor!), `the other worker (${survivor}) is still alive; victim ${victim}; log since the kill:\n${since()}`);
    // A request on a connection the killed worker owned can fail (its socket dies with it);
    // each load loop has at most one request in flight, so at most CONCURRENCY can.
    assert.ok(r.failed <= CONCURRENCY, `failed ${r.failed}: ${r.failures.join(', ')}`);
    // A connection stranded by the kill would show as a request that timed out, not one that failed fast.
    assert.deepEqual(r.failures.filter((f) => /timeout/i.test(f)), [], 'no request was left hanging');
    const health = await request(`${gw.adminUrl}/healthz`);
    assert.deepEqual(await health.body.json(), { status: 'ok', workers: 2 });
    assert.equal(metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_worker_restarts_total'), 1);
    t.diagnostic(`kill -9 worker: ${r.ok} ok, ${r.failed} failed (${r.failures.join(', ')})`);
  });

  it('SIGHUP during load replaces the workers one at a time with zero failed requests', async (t) => {
    const oldPids = workerPids().slice(-2);
    const load = startLoad(`${gw.url}/x`, { concurrency: CONCURRENCY, headers: { 'x-api-key': KEY }, watchHeader: 'ratelimit-policy' });
    await pollUntil(async () => (load.done() > 300 ? true : undefined), 5000);
    writeFileSync(gw.file, stringify(config(900_000)));
    gw.child.kill('SIGHUP');
    await gw.waitForLine((l) => l.msg === 'reload done');
    const atDone = load.done();
    await pollUntil(async () => (load.done() > atDone + 300 ? true : undefined), 5000);
    const r = await load.stop();
    assert.equal(r.failed, 0, `failed: ${r.failures.join(', ')}`);
    assert.ok([...r.seen.keys()].some((p) => p.includes('q=900000')), [...r.seen.keys()].join(' | '));
    const exited = await pollUntil(async () => (oldPids.every((p) => !alive(p)) ? true : undefined), 60_000);
    assert.equal(exited.value, true, 'the old workers drained and exited');
    const last = await request(`${gw.url}/x`, { headers: { 'x-api-key': KEY } });
    await last.body.dump();
    assert.match(String(last.headers['ratelimit-policy']), /q=900000/);
    t.diagnostic(`SIGHUP 2 workers: ${r.ok} ok, ${r.failed} failed; policies seen ${JSON.stringify(Object.fromEntries(r.seen))}`);
  });
});

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}
