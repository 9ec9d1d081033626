import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { startWorkBackend, type WorkBackend } from '../../test/harness/work-backend.js';
import { keySchema } from '../store/key-schema.js';

// The exactness bounds of docs/limits.md with costs, settlements and refunds, each on a
// real Redis shared by three real gateway processes (token leases on, as shipped):
//   1. units: admitted units never exceed burst + rate x elapsed, nor a quota, with
//      cheap and dear requests mixed, and no unit is lost (a quota fills exactly);
//   2. settlement: the work admitted costs at most the quota + the largest estimate
//      error x the requests in flight, and the counters end at exactly what it cost;
//   3. refunds: a failed response gives its units back; successful work stays within
//      the quota, and the counters end at exactly the successful requests;
//   4. a refund clears cached denials on every gateway (pub/sub), so a gateway that
//      remembered a refusal admits again at once instead of after deny_cache_ms.
// The store timeout is 2 s and the failure policy closed, as in limits.exactness.test:
// this file is about the store's decisions, never the fallback's.

const GATEWAYS = 3;
const k = keySchema('sluice:');
const AUTO = { 'x-options': '{"format":"auto"}' };

const PLANS = {
  bucket: { rate: 10, burst: 50, costs: { base: 1, format_auto: 4 } },
  quota: { quota_day: 200, costs: { base: 1, format_auto: 4 } },
  // Estimated at 1 (nothing visible), settled at 5 (4 megapixels): an estimate error of 4.
  settle: { quota_day: 100, costs: { base: 1, per_megapixel: 1, max_units: 5 } },
  refund: { quota_day: 60 },
  remembered: { quota_day: 10, deny_cache_ms: 60_000 },
};
const KEYS = Object.keys(PLANS).map((plan) => ({ digest: sha256(`x-${plan}`), customer: `c-${plan}`, plan }));

interface Outcome { readonly status: number; readonly code: string | undefined; readonly units: number }

describe('credits: exactness across 3 gateways sharing one Redis', () => {
  let redis: RedisProcess;
  let client: Redis;
  let backend: WorkBackend;
  let gws: GatewayProcess[] = [];
  let pools: Pool[] = [];

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    backend = await startWorkBackend();
    const cfg = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' },
      plans: PLANS, keys: KEYS, log: { access: false },
      // Failed answers are not retried on another target: each one is one request's failure.
      upstream: { retry: { attempts: 0 } },
    });
    // One after another: on a busy host, processes started together can each miss their start-up deadline.
    for (let i = 0; i < GATEWAYS; i++) gws.push(await spawnGateway(cfg));
    pools = gws.map((g) => new Pool(g.url, { connections: 64, headersTimeout: 10_000, bodyTimeout: 10_000 }));
  });

  after(async () => {
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.stop()));
    client?.disconnect();
    await backend?.close();
    await redis?.stop();
  });

  const send = async (gw: number, plan: string, units: number, headers: Record<string, string> = {}): Promise<Outcome> => {
    const res = await pools[gw]!.request({ method: 'POST', path: '/v1/images', headers: { 'x-api-key': `x-${plan}`, ...headers }, body: '' });
    const text = await res.body.text();
    return { status: res.statusCode, code: res.statusCode === 429 ? (JSON.parse(text) as { error: { code: string } }).error.code : undefined, units };
  };
  const dayUsed = async (customer: string): Promise<number> => Number(await client.hget(k.counters(customer), 'dn') ?? 0);
  const redisNow = async (): Promise<number> => { const [sec, usec] = await client.time(); return Number(sec) * 1000 + Math.floor(Number(usec) / 1000); };
  const admittedUnits = (os: readonly Outcome[]): number => os.filter((o) => o.status === 200).reduce((a, o) => a + o.units, 0);

  it('1a. a bucket of 50 units at 10/s: cheap and dear requests together never take more than burst + rate x elapsed', async (t) => {
    const t0 = await redisNow();
    const out = await Promise.all(Array.from({ length: 90 }, (_, i) => (i % 2 === 0 ? send(i % GATEWAYS, 'bucket', 1) : send(i % GATEWAYS, 'bucket', 5, AUTO))));
    const elapsed = (await redisNow()) - t0;
    const units = admittedUnits(out);
    t.diagnostic(`admitted ${units} units (${out.filter((o) => o.status === 200).length} of 90 requests) in ${elapsed} ms`);
    assert.deepEqual([...new Set(out.map((o) => o.code ?? String(o.status)))].sort(), ['200', 'rate_limited']);
    // One dear request may be decided a moment after the last Redis reading.
    assert.ok(units <= 50 + 10 * elapsed / 1000 + 5, `${units} units admitted; at most ${50 + 10 * elapsed / 1000} + 5`);
    // Below it only by what the other gateways' leases held (3 x 5) and a dear request refused with 4 left.
    assert.ok(units >= 50 - 3 * 5 - 4, `${units} units admitted`);
  });

  it('1b. a day quota of 200 units: filled exactly, never passed, by cheap and dear requests on every gateway', async () => {
    const first = await Promise.all(Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? send(i % GATEWAYS, 'quota', 1) : send(i % GATEWAYS, 'quota', 5, AUTO))));
    const units = [admittedUnits(first)];
    assert.ok(units[0]! <= 200, `${units[0]} units admitted`);
    // Then single units until every gateway refuses for a while (leases other gateways held go back within 2 x target_ms).
    let refusedInARow = 0;
    for (let i = 0; refusedInARow < 3 * GATEWAYS; i++) {
      const o = await send(i % GATEWAYS, 'quota', 1);
      if (o.status === 200) { units.push(1); refusedInARow = 0; } else {
        assert.equal(o.code, 'quota_exceeded');
        refusedInARow++;
        await new Promise((r) => setTimeout(r, 60));
      }
    }
    assert.equal(units.reduce((a, b) => a + b, 0), 200, 'every unit of the quota, and not one more');
    assert.equal(await dayUsed('c-quota'), 200);
  });

  it('2. settlement: the work admitted costs at most the quota + the estimate error (4) x the requests in flight (6), and the counter ends at what it cost', async (t) => {
    const CLIENTS = 6;
    const work = { 'x-test-work': 'pixels=4000000, encodes=1' };
    const admitted: number[] = Array(CLIENTS).fill(0);
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      // Each client on one gateway, one request at a time: at most one admitted and not yet settled.
      let refused = 0;
      while (refused < 2) {
        const o = await send(c % GATEWAYS, 'settle', 5, work);
        if (o.status === 200) { admitted[c]!++; refused = 0; } else { assert.equal(o.code, 'quota_exceeded'); refused++; }
      }
    }));
    const n = admitted.reduce((a, b) => a + b, 0);
    t.diagnostic(`${n} requests admitted, costing ${5 * n} units against a quota of 100 (bound ${100 + CLIENTS * 4})`);
    assert.ok(5 * n <= 100 + CLIENTS * 4, `${5 * n} units of work admitted`);
    assert.ok(5 * n >= 100 - 4, `${5 * n} units of work: the quota was used`);
    await waitUntil(async () => (await dayUsed('c-settle')) === 5 * n, 5000, `the counter at ${5 * n}`);
  });

  it('3. refunds: failed responses give their units back; successes stay within the quota and the counter ends at them', async (t) => {
    const CLIENTS = 6;
    let ok = 0;
    let failed = 0;
    await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
      let refused = 0;
      for (let i = 0; refused < 2; i++) {
        const o = await send(c % GATEWAYS, 'refund', 1, i % 2 === 0 ? { 'x-test-status': '500' } : {});
        if (o.status === 200) { ok++; refused = 0; } else if (o.status === 500) { failed++; refused = 0; } else { assert.equal(o.code, 'quota_exceeded'); refused++; }
      }
    }));
    t.diagnostic(`${ok} succeeded, ${failed} failed (refunded) against a quota of 60`);
    assert.ok(failed >= 30, `${failed} failures`);
    assert.ok(ok <= 60, `${ok} successful requests`);
    // A refund may land after a client's last refusal: at most one per client goes unused.
    assert.ok(ok >= 60 - CLIENTS, `${ok} successful requests`);
    await waitUntil(async () => (await dayUsed('c-refund')) === ok, 5000, `the counter at ${ok}`);
  });

  it('4. a refund clears a remembered refusal on every gateway at once (pub/sub), not after deny_cache_ms (60 s)', async (t) => {
    // 9 units used, the 10th held in flight on gateway 0 until it fails.
    for (let i = 0; i < 9; i++) assert.equal((await send(i % GATEWAYS, 'remembered', 1)).status, 200);
    const held = send(0, 'remembered', 1, { 'x-test-delay-ms': '1500', 'x-test-status': '503' });
    await waitUntil(async () => (await dayUsed('c-remembered')) === 10, 5000, 'the 10th unit taken');
    // Gateway 1 is refused, and then refuses from memory.
    const hits0 = metricValue(await scrapeMetrics(gws[1]!.adminUrl), 'sluice_limit_deny_cache_hits_total');
    for (let i = 0; i < 3; i++) assert.equal((await send(1, 'remembered', 1)).code, 'quota_exceeded');
    assert.ok(metricValue(await scrapeMetrics(gws[1]!.adminUrl), 'sluice_limit_deny_cache_hits_total') >= hits0 + 2, 'refused from the deny cache');
    assert.equal((await held).status, 503);
    const failedAt = performance.now();
    let admittedAfter = -1;
    await waitUntil(async () => {
      const o = await send(1, 'remembered', 1);
      if (o.status === 200) admittedAfter = performance.now() - failedAt;
      return o.status === 200;
    }, 5000, 'gateway 1 to admit the refunded unit');
    t.diagnostic(`gateway 1 admitted the refunded unit ${admittedAfter.toFixed(0)} ms after the failure`);
    assert.ok(admittedAfter < 5000);
    assert.equal(await dayUsed('c-remembered'), 10);
  });
});
