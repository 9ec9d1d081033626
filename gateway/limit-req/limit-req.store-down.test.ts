import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Pool } from 'undici';
import { testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { startTestBackend, waitUntil, type TestBackend } from '../../test/harness/test-backend.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

// Issue 9: the nginx zones go through the same store guard as the plan limits. With Redis
// stopped, two gateways decide limit_req and limit_conn zones on their own shares
// (1/2 each once they have counted each other), within the store timeout, behind a
// breaker that opened on evidence, instead of each waiting out every call and each
// admitting the whole zone.

const TIMEOUT_MS = 50;

describe('limit_req and limit_conn with the shared store stopped: the guard, the breaker and the fleet share', () => {
  let redis: RedisProcess;
  let backend: TestBackend;
  let gws: GatewayProcess[] = [];
  let pools: Pool[] = [];

  before(async () => {
    redis = await startRedis();
    backend = await startTestBackend();
    const cfg = {
      ...testConfig({
        upstreams: [backend.url],
        store: { kind: 'redis', url: redis.url, timeout_ms: TIMEOUT_MS, failure_policy: 'open', probe_interval_ms: 200 },
        log: { access: false },
        routes: [
          { name: 'req', prefix: '/req/', upstream: 'main', public: true, limit_req: [{ zone: 'tenant', burst: 20, nodelay: true }] },
          { name: 'hold', prefix: '/hold/', upstream: 'main', public: true, limit_conn: [{ zone: 'perkey', max: 4 }], limit_conn_status: 429 },
        ],
      }),
      // A slow refill: during the outage every admission spends burst.
      limit_req_zones: { tenant: { key: 'header:X-Tenant', rate: '1r/m', size: '1m' } },
      limit_conn_zones: { perkey: { key: 'header:X-Tenant', size: '1m' } },
    };
    gws = await Promise.all([spawnGateway(cfg), spawnGateway(cfg)]);
    pools = gws.map((g) => new Pool(g.url, { connections: 40, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 }));
  });

  after(async () => {
    for (const g of gws) if (g.stderr.length > 0) console.error(`gateway stderr:\n${g.stderr.join('\n')}`);
    redis?.signal('SIGCONT');
    backend?.releaseAll();
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.stop()));
    await backend?.close();
    await redis?.stop();
  });

  const send = async (gw: number, path: string, tenant: string): Promise<{ status: number; ms: number }> => {
    const t0 = performance.now();
    const res = await pools[gw]!.request({ method: 'GET', path, headers: { 'x-tenant': tenant } });
    await res.body.dump();
    return { status: res.statusCode, ms: performance.now() - t0 };
  };

  it('limit_req: two gateways admit their halves of the zone, not the whole zone each; limit_conn: 4 in flight in all', async (t) => {
    // Each gateway counts the other (a count is trusted 3 s after it registers).
    await waitUntil(async () => {
      const d = await Promise.all(gws.map(async (g) => metricValue(await scrapeMetrics(g.adminUrl), 'sluice_store_fleet_divisor')));
      return d.every((n) => n === 2);
    }, 10_000, 'both gateways to count a fleet of 2', 100);
    for (let g = 0; g < 2; g++) assert.equal((await send(g, '/req/x', 'warm')).status, 200);

    const req: { status: number; ms: number }[] = [];
    const arrivedBefore = backend.arrivals.size;
    const held: Promise<{ status: number; ms: number }>[] = [];
    try {
      redis.signal('SIGSTOP');
      req.push(...await Promise.all(Array.from({ length: 80 }, (_, i) => send(i % 2, '/req/x', 't-req'))));
      await Promise.all(gws.map((g) => g.waitForLine((l) => String(l.msg).startsWith('store breaker open'))));
      // limit_conn: 20 held requests; each gateway's share of max 4 is 2.
      for (let i = 0; i < 20; i++) held.push(send(i % 2, `/hold/${i}`, 't-conn'));
      // Refusals answer at once: wait until every request is either held or answered.
      let answered = 0;
      for (const p of held) void p.then(() => { answered++; });
      await waitUntil(() => backend.held() + answered === 20, EVENT_TIMEOUT_MS, 'every held request decided');
    } finally {
      redis.signal('SIGCONT');
    }
    const maxHeld = backend.maxHeld();
    backend.releaseAll();
    const conn = await Promise.all(held);
    const admitted = req.filter((r) => r.status === 200).length;
    const slowest = Math.max(...req.map((r) => r.ms));
    t.diagnostic(`limit_req during the outage: ${admitted} of ${req.length} admitted, slowest ${slowest.toFixed(1)} ms; `
      + `limit_conn: ${maxHeld} held at once, ${conn.filter((r) => r.status === 429).length} refused`);

    assert.deepEqual([...new Set(req.map((r) => r.status))].sort(), [200, 503], 'only admissions and limit_req refusals');
    // nginx admits burst + 1 at once (the first request has excess 0): a half-zone each is 10 + 1.
    assert.ok(admitted <= 2 * (20 / 2 + 1), `the fleet admitted ${admitted}, more than its two halves of the zone`);
    assert.ok(admitted >= 2 * (20 / 2 - 1), `the fleet admitted ${admitted}: failing open must admit the shares`);
    assert.ok(slowest < 2000, 'no request waited on the stopped store');
    assert.equal(maxHeld, 4, 'limit_conn max 4 held in all: two slots per gateway');
    assert.equal(backend.arrivals.size - arrivedBefore - admitted, 4);
    for (const g of gws) {
      const m = await scrapeMetrics(g.adminUrl);
      assert.ok(metricValue(m, 'sluice_store_errors_total', { op: 'limit_req', kind: 'timeout' }) >= 1, 'zone timeouts are counted by operation');
      assert.ok(metricValue(m, 'sluice_limit_decisions_total', { result: 'fallback_open' }) >= 10);
    }
  });
});
