import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnDelayBackend, type DelayBackend } from '../../test/harness/delay-backend.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { startLoad } from '../../test/harness/load.js';
import { loopLagMaxMs, metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { pollUntil } from '../../test/harness/poll.js';
import { assertGatewayHealthy } from '../../test/harness/proc.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';

const KEY = 'k-kill';
const CONCURRENCY = 8;
/** upstream.outlier.consecutive_failures below. */
const CONSECUTIVE_FAILURES = 3;
const HEADERS = { 'x-api-key': KEY };

describe('fault: kill -9 one of three backends during a GET load', { timeout: 180_000 }, () => {
  let backends: DelayBackend[] = [];
  let gw: GatewayProcess;

  before(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((n) => spawnDelayBackend(n, 2)));
    gw = await spawnGateway(testConfig({
      upstreams: backends.map((b) => b.url),
      upstream: {
        // A dead backend refuses connections at once, so passive ejection finds it under the
        // load and the check's timeout is no part of that; a short one takes living backends
        // out on a busy host (250 ms did, at a load average of 35 on 2 cores).
        health: { path: '/healthz', interval_ms: 1000, timeout_ms: 1000, healthy_threshold: 2, unhealthy_threshold: 2 },
        outlier: { consecutive_failures: CONSECUTIVE_FAILURES, base_ejection_ms: 30000, max_ejection_percent: 50 },
        retry: { attempts: 2, budget_percent: 20, min_per_second: 3 },
      },
      keys: [{ digest: sha256(KEY), customer: 'acme', plan: 'test' }],
      plans: { test: { rate: 1_000_000, burst: 1_000_000 } },
      log: { access: false },
    }));
  });
  after(async () => {
    await gw?.stop();
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  });

  it('no client sees an error, and the dead backend is taken out of rotation by the load\'s first failures', async () => {
    const c = backends[2]!;
    const load = startLoad(`${gw.url}/v1/fault`, { concurrency: CONCURRENCY, headers: HEADERS });
    // Let every backend carry part of the load (keep-alive connections open to c) first.
    const warm = await pollUntil(async () => (load.done() >= 300 ? true : undefined), EVENT_TIMEOUT_MS, 20);
    assert.ok(warm.value, `only ${load.done()} requests in the warm-up`);
    await new Promise((r) => setTimeout(r, 500));
    const beforeKill = load.done();
    const errorsBefore = metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_upstream_errors_total');
    await c.kill('SIGKILL');
    const killedAt = performance.now();
    // Every scrape resets the gateway's loop-lag maximum: the window's is the largest seen.
    let lagMs = 0;
    const out = await pollUntil(async () => {
      const m = await scrapeMetrics(gw.adminUrl);
      lagMs = Math.max(lagMs, loopLagMaxMs(m));
      return metricValue(m, 'sluice_upstream_target_healthy', { target: c.url }) === 0 ? m : undefined;
    }, EVENT_TIMEOUT_MS, 10);
    const outMs = performance.now() - killedAt;
    // The load runs on for a while with c out, so requests after the ejection count too.
    await new Promise((r) => setTimeout(r, 1500));
    const result = await load.stop();
    const m = await scrapeMetrics(gw.adminUrl);
    const retries = metricValue(m, 'sluice_upstream_retries_total');
    const refused = metricValue(m, 'sluice_upstream_retries_refused_total');
    console.log(`kill -9 under load: ${result.ok} ok, ${result.failed} failed (${result.ok + result.failed - beforeKill} after the kill); `
      + `out of rotation ${outMs.toFixed(0)} ms after the kill, ${metricValue(out.value ?? "", "sluice_upstream_errors_total") - errorsBefore} upstream failures before (the gateway's loop lagged up to ${lagMs.toFixed(0)} ms); ${retries} retries, ${refused} refused by the budget`);
    assert.ok(out.value !== undefined, 'c was never taken out of rotation');
    // Judged by cause, not by this process's clock (on a busy host the load itself slows, so
    // the failures that eject come later): c left by passive ejection, not by the health
    // checks' two failed intervals, and the failures it took were the requests in flight
    // to c when it died plus the outlier rule's consecutive failures, not a second's load.
    const ejected = metricValue(out.value, 'sluice_upstream_ejections_total', { target: c.url, source: 'outlier' });
    const failures = metricValue(out.value, 'sluice_upstream_errors_total') - errorsBefore;
    assert.equal(ejected, 1, `c left rotation by passive ejection (outlier), ${outMs.toFixed(0)} ms after the kill`);
    assert.ok(failures <= CONCURRENCY + CONSECUTIVE_FAILURES, `${failures} upstream failures before c left rotation`);
    assert.deepEqual(result.failures, []);
    assert.equal(result.failed, 0);
    assert.ok(result.ok - beforeKill >= 100, `only ${result.ok - beforeKill} requests after the kill`);
    assert.ok(retries >= 1, 'the kill never caused a retry: the test did not exercise anything');
    assertGatewayHealthy(gw);
  });
});
