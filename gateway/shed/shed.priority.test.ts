import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend, type DelayBackend } from '../../test/harness/delay-backend.js';
import { drive, type DriveResult } from '../../test/harness/drive.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { waitUntil } from '../../test/harness/test-backend.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

// Issue 5 item 7, end to end on the in-flight trigger: a real gateway (max_inflight 8)
// in front of a backend process that holds every request 200 ms, with a low plan
// (priority 0), a high plan (priority 10) and a public route. Below the threshold
// nothing is shed; past it the low plan and the public route get 503 `overloaded` with
// Retry-After while every high-priority request is served. The loop-delay trigger is
// covered by shed.detector.test.ts: how much load it takes to delay this gateway's
// loop depends on the machine, so no load level would make it deterministic here.

const LOW = { 'x-api-key': 'low-key' };
const HIGH = { 'x-api-key': 'high-key' };
const MAX_INFLIGHT = 8;

const count = (r: DriveResult, status: number): number => r.byStatus.get(status) ?? 0;
const pub = (i: number): string => `/pub/${i}`;

describe('shed: priority load shedding (in-flight trigger)', () => {
  let backend: DelayBackend;
  let gw: GatewayProcess;

  before(async () => {
    backend = await spawnDelayBackend('slow', 200);
    gw = await spawnGateway({
      ...testConfig({
        upstreams: [backend.url],
        plans: { low: { priority: 0 }, high: { priority: 10 } },
        keys: [
          { digest: sha256(LOW['x-api-key']), customer: 'c-low', plan: 'low' },
          { digest: sha256(HIGH['x-api-key']), customer: 'c-high', plan: 'high' },
        ],
        routes: [
          { name: 'pub', prefix: '/pub/', upstream: 'main', public: true },
          { name: 'api', prefix: '/', upstream: 'main' },
        ],
        log: { access: false },
      }),
      shed: { max_inflight: MAX_INFLIGHT, sample_interval_ms: 50 },
    }).catch(async (err: unknown) => { await backend.kill(); throw err; });
  });

  after(async () => {
    await gw?.stop();
    await backend?.kill();
  });

  it('sheds nothing while in-flight stays below max_inflight', async () => {
    // 3 + 2 + 1 = 6 open at most, under 8.
    const [high, low, open] = await Promise.all([
      drive(gw.url, 12, 3, HIGH),
      drive(gw.url, 8, 2, LOW),
      drive(gw.url, 4, 1, {}, pub),
    ]);
    assert.deepEqual([count(high, 200), count(low, 200), count(open, 200)], [12, 8, 4], JSON.stringify([high.errors, low.errors, open.errors]));
    const m = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(m, 'sluice_shed_total'), 0);
    assert.equal(metricValue(m, 'sluice_overload_level'), 0);
  });

  it('past max_inflight sheds the low plan and public routes with 503 overloaded, and serves every high-priority request', async () => {
    // 6 high + 10 low + 2 public clients: 18 open at once, past 1.5 x 8 = 12, where the
    // level reaches 2 (public and priority 0 shed; with S = 2 tiers the band is 8..12).
    const started = performance.now();
    const [high, low, open] = await Promise.all([
      drive(gw.url, 36, 6, HIGH),
      drive(gw.url, 300, 10, LOW),
      drive(gw.url, 60, 2, {}, pub),
    ]);
    const elapsed = Math.round(performance.now() - started);

    assert.equal(count(high, 200), 36, `high: ${JSON.stringify([...high.byStatus])} ${high.errors.join(',')}`);
    assert.equal(count(high, 503), 0);
    assert.ok(count(low, 503) > 0, `low: ${JSON.stringify([...low.byStatus])}`);
    assert.ok(count(open, 503) > 0, `public: ${JSON.stringify([...open.byStatus])}`);
    // Nothing but 200 and 503 overloaded: shedding is not some other failure.
    for (const r of [low, open]) {
      assert.equal(count(r, 200) + count(r, 503), r === low ? 300 : 60, JSON.stringify([...r.byStatus]));
      assert.ok(r.errors.every((e) => e === 'overloaded'), r.errors.filter((e) => e !== 'overloaded').join(','));
    }

    const m = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(m, 'sluice_shed_total', { plan: 'low', priority: '0' }), count(low, 503));
    assert.equal(metricValue(m, 'sluice_shed_total', { plan: '(public)', priority: 'public' }), count(open, 503));
    assert.equal(metricValue(m, 'sluice_shed_total', { plan: 'high' }), 0);
    // Level 2 of 2: everything below the top priority was shed at some point.
    await gw.waitForLine((l) => l.msg === 'overloaded: shedding lower priorities' && l.shed_level === 2 && l.serving_min_priority === 10, 1000);
    console.log(`shed: ${elapsed} ms; high 200=${count(high, 200)}; low 200=${count(low, 200)} 503=${count(low, 503)}; public 200=${count(open, 200)} 503=${count(open, 503)}`);
  });

  it('answers a shed request with JSON, Retry-After and the request id, and stops shedding once the load is gone', async () => {
    // Hold the level up with high-priority load (never shed) and probe with the low plan.
    const load = drive(gw.url, 30, 13, HIGH);
    let shed: { status: number; retryAfter: unknown; body: { error?: { code: string; request_id: string } }; id: unknown } | undefined;
    await waitUntil(async () => {
      const res = await request(`${gw.url}/v1/probe`, { headers: LOW });
      const body = await res.body.json() as { error?: { code: string; request_id: string } };
      if (res.statusCode === 503) shed = { status: res.statusCode, retryAfter: res.headers['retry-after'], body, id: res.headers['x-request-id'] };
      return shed !== undefined;
    }, 5000, 'a shed low-priority request', 20);
    assert.equal(shed!.retryAfter, '1');
    assert.equal(shed!.body.error?.code, 'overloaded');
    assert.equal(shed!.body.error?.request_id, shed!.id);
    const high = await load;
    assert.equal(count(high, 200), 30);

    // Two tiers to come down, one per second of calm: well within 5 s.
    const calmFrom = performance.now();
    await waitUntil(async () => metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_overload_level') === 0, EVENT_TIMEOUT_MS, 'the overload level back at 0', 50);
    console.log(`shed: level back to 0 ${Math.round(performance.now() - calmFrom)} ms after the load ended`);
    const res = await request(`${gw.url}/v1/after`, { headers: LOW });
    await res.body.dump();
    assert.equal(res.statusCode, 200);
  });
});
