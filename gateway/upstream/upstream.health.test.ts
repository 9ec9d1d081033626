import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend, type DelayBackend } from '../../test/harness/delay-backend.js';
import { drive } from '../../test/harness/drive.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { loopLagMaxMs, metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

const KEY = 'k-health';
const HEADERS = { 'x-api-key': KEY };

async function gatewayOver(backends: readonly DelayBackend[], upstream: object): Promise<GatewayProcess> {
  return spawnGateway(testConfig({
    upstreams: backends.map((b) => b.url),
    upstream,
    keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
    plans: { test: { rate: 100000, burst: 100000 } },
    log: { access: false },
  }));
}

async function healthy(gw: GatewayProcess, target: string): Promise<number> {
  return metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upstream_target_healthy', { target });
}

describe('upstream health: a killed backend is ejected, comes back, and all-down is an immediate 503', { timeout: 180_000 }, () => {
  let backends: DelayBackend[] = [];
  let gw: GatewayProcess;

  before(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => spawnDelayBackend(n, 2)));
    gw = await gatewayOver(backends, {
      balancer: 'round_robin',
      // A dead backend refuses connections at once (passive ejection finds it under load); the
      // check's timeout only decides how slow a living one may answer, and 100 or 250 ms takes
      // living ones out on a busy host.
      health: { path: '/healthz', interval_ms: 1000, timeout_ms: 1000, healthy_threshold: 2, unhealthy_threshold: 2 },
      outlier: { consecutive_failures: 3, base_ejection_ms: 30000, max_ejection_percent: 50 },
    });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  });

  it('SIGKILL: the dead backend is out within a second and the others take all the traffic', async () => {
    const c = backends[2]!;
    assert.equal(await healthy(gw, c.url), 1);
    const warm = await drive(gw.url, 60, 4, HEADERS);
    assert.equal(warm.byBackend.get('c'), 20);
    await c.kill('SIGKILL');
    const killedAt = performance.now();
    // Traffic keeps flowing while the gateway notices: bounded rounds of load until c is out.
    // Every scrape resets the gateway's loop-lag maximum: the window's is the largest seen.
    let lagMs = 0;
    const out = await pollUntil(async () => {
      await drive(gw.url, 12, 4, HEADERS);
      const m = await scrapeMetrics(gw.adminUrl);
      lagMs = Math.max(lagMs, loopLagMaxMs(m));
      return metricValue(m, 'sluice_upstream_target_healthy', { target: c.url }) === 0 ? true : undefined;
    }, EVENT_TIMEOUT_MS, 0);
    assert.ok(out.value, 'c was never taken out of rotation');
    const outAfter = performance.now() - killedAt;
    console.log(`dead backend out of rotation after ${outAfter.toFixed(0)} ms (the gateway's loop lagged up to ${lagMs.toFixed(0)} ms)`);
    // Passive ejection on the load's failures: a few turns of the gateway's loop late at worst.
    assert.ok(outAfter < 1000 + 4 * lagMs, `took ${outAfter.toFixed(0)} ms`);
    const after = await drive(gw.url, 200, 8, HEADERS);
    assert.deepEqual(after.errors, []);
    assert.equal(after.byBackend.get('c'), undefined);
    assert.equal((after.byBackend.get('a') ?? 0) + (after.byBackend.get('b') ?? 0), 200);
    assert.ok(metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upstream_ejections_total', { target: c.url }) >= 1);
  });

  it('comes back once its health checks pass again (before its 30 s ejection ends)', async () => {
    const port = backends[2]!.port;
    backends[2] = await spawnDelayBackend('c', 2, port);
    const back = await pollUntil(async () => ((await healthy(gw, backends[2]!.url)) === 1 ? true : undefined), EVENT_TIMEOUT_MS, 50);
    assert.ok(back.value, 'c never came back');
    const r = await drive(gw.url, 60, 4, HEADERS);
    assert.deepEqual(r.errors, []);
    assert.ok((r.byBackend.get('c') ?? 0) >= 15, `c answered ${r.byBackend.get('c') ?? 0} of 60`);
  });

  it('every target down: 503 unavailable at once, not a timeout', async () => {
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
    const down = await pollUntil(async () => {
      const m = await scrapeMetrics(gw.adminUrl);
      return backends.every((b) => metricValue(m, 'sluice_upstream_target_healthy', { target: b.url }) === 0) ? true : undefined;
    }, EVENT_TIMEOUT_MS, 50);
    assert.ok(down.value, 'the health checks never took every target out');
    const t0 = performance.now();
    const res = await request(`${gw.url}/v1/anything`, { headers: HEADERS });
    const ms = performance.now() - t0;
    assert.equal(res.statusCode, 503);
    assert.equal((await res.body.json() as { error: { code: string } }).error.code, 'unavailable');
    // At once: no try to wait out (a connect attempt may take connect_timeout_ms, 2 s); the
    // rest of the time is loopback hops on a host that may be busy.
    assert.ok(ms < 1000, `503 took ${ms.toFixed(0)} ms`);
    assertGatewayHealthy(gw);
  });
});

describe('upstream health: passive ejection never takes out more than max_ejection_percent', { timeout: 180_000 }, () => {
  let backends: DelayBackend[] = [];
  let gw: GatewayProcess;

  before(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => spawnDelayBackend(n, 1)));
    // No active checks: only what real traffic shows. 34% of 3 targets is one target.
    gw = await gatewayOver(backends, { balancer: 'round_robin', outlier: { consecutive_failures: 2, base_ejection_ms: 30000, max_ejection_percent: 34 } });
  });
  after(async () => {
    await gw?.stop();
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  });

  it('two of three killed: one is ejected, the other keeps its share (502s), the live one serves', async () => {
    await Promise.all([backends[1]!.kill('SIGKILL'), backends[2]!.kill('SIGKILL')]);
    const r = await drive(gw.url, 90, 3, HEADERS);
    const m = await scrapeMetrics(gw.adminUrl);
    const ejected = backends.filter((b) => metricValue(m, 'sluice_upstream_target_healthy', { target: b.url }) === 0);
    assert.equal(ejected.length, 1, `ejected: ${ejected.map((b) => b.name).join(', ')}`);
    assert.equal(metricValue(m, 'sluice_upstream_ejections_total'), 1);
    assert.ok((r.byBackend.get('a') ?? 0) >= 30, `a answered ${r.byBackend.get('a') ?? 0}`);
    assert.ok(r.errors.filter((e) => e === 'bad_gateway').length >= 20, `errors: ${r.errors.join(',')}`);
    assert.equal(r.errors.filter((e) => e === 'unavailable').length, 0);
  });
});
