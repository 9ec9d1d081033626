import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { decisionsOver, loopLagMaxMs, metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { startTestBackend, waitUntil, type TestBackend } from '../../test/harness/test-backend.js';
import { EVENT_TIMEOUT_MS } from '../../test/harness/wait.js';
import { keySchema } from '../store/key-schema.js';
import { shareOf } from './guarded-limiter.js';

// DESIGN.md: "A Redis that is slow or gone never makes a request wait longer than the
// configured store timeout", and the failure policy decides meanwhile. A SIGSTOPped
// redis-server is the worst kind of slow: the TCP connection stays up and every
// command just waits, so nothing but the gateway's own deadline can end the wait.

const TIMEOUT_MS = 50;
/**
 * The store deadline plus 20 ms for timer granularity. What the gateway's own event loop
 * adds is measured in the same window and allowed on top (decisionsOver): DESIGN.md's
 * "plus one event-loop turn". A store that is stopped answers nothing, so no late-loop
 * grace applies.
 */
const DECISION_BUDGET_MS = TIMEOUT_MS + 20;
const OUTAGE_MS = 1000;
const WORKERS = 20;
/** Between one worker's requests: ~230 requests/s in all, steady, yet leaving CPU to spare on a shared 2-core machine. */
const THINK_MS = 80;

interface Sample { id: string; sentAt: number; doneAt: number; status: number; code: string | undefined }

const k = keySchema('sluice:');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

function scenario(policy: 'open' | 'closed'): void {
  describe(`store stops answering (failure_policy ${policy}, timeout ${TIMEOUT_MS} ms)`, () => {
    let redis: RedisProcess;
    let backend: TestBackend;
    let gw: GatewayProcess;
    let pool: Pool;

    before(async () => {
      redis = await startRedis();
      backend = await startTestBackend();
      gw = await spawnGateway(testConfig({
        upstreams: [backend.url],
        store: { kind: 'redis', url: redis.url, timeout_ms: TIMEOUT_MS, failure_policy: policy, probe_interval_ms: 200 },
        // Limits generous enough never to refuse, with leases, so a leaked lease would show.
        plans: { steady: { rate: 100_000, burst: 100_000, max_inflight: 10_000 } },
        keys: [
          { digest: sha256('k-steady'), customer: 'c-steady', plan: 'steady' },
          // First used during the outage, so its lookup (an auth cache miss) meets the stopped store.
          { digest: sha256('k-cold'), customer: 'c-cold', plan: 'steady' },
        ],
        // The counters in /metrics say who decided; access-log lines would only add CPU noise to the timing.
        log: { access: false },
      }));
      pool = new Pool(gw.url, { connections: WORKERS + 4, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
    });

    after(async () => {
      // SIGCONT before anything else: a stopped redis-server would hang every cleanup after it.
      redis?.signal('SIGCONT');
      await pool?.close();
      await gw?.stop();
      await backend?.close();
      await redis?.stop();
    });

    it('no limit decision waits past the timeout while Redis is stopped; enforcement is back within 1 s of SIGCONT', async (t: TestContext) => {
      const samples: Sample[] = [];
      let seq = 0;
      let running = true;
      let completions = 0;
      const onCompletion: (() => void)[] = [];
      const send = async (): Promise<void> => {
        const id = `ss-${policy}-${++seq}`;
        const sentAt = performance.now();
        const res = await pool.request({ method: 'GET', path: '/v1/x', headers: { 'x-api-key': 'k-steady', 'x-request-id': id } });
        const text = await res.body.text();
        const doneAt = performance.now();
        const code = res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code;
        samples.push({ id, sentAt, doneAt, status: res.statusCode, code });
        completions++;
        for (const f of onCompletion.splice(0)) f();
      };
      const completed = (n: number): Promise<void> => new Promise((resolve) => {
        const target = completions + n;
        const check = (): void => { if (completions >= target) resolve(); else onCompletion.push(check); };
        check();
      });

      // Warm every connection, the JIT and the auth cache while Redis still answers.
      for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: WORKERS }, () => send()));
      samples.length = 0;

      const HARD_STOP = performance.now() + 15_000;
      const workers = Array.from({ length: WORKERS }, async () => {
        for (let n = 0; running && n < 2000 && performance.now() < HARD_STOP; n++) {
          await send();
          await sleep(THINK_MS);
        }
      });

      let stopAt = 0;
      let contAt = 0;
      let closedSeenAt = 0;
      let atClose = '';
      let cold = { status: 0, text: '', ms: 0 };
      let scrapedAt = 0;
      let windowStart = '';
      let linesAtClose = 0;
      let lagMs = 0;
      try {
        await completed(150);
        // From here the gateway's loop lag is measured afresh (every scrape resets it).
        windowStart = await scrapeMetrics(gw.adminUrl);
        const linesBefore = gw.lines.length;
        stopAt = performance.now();
        redis.signal('SIGSTOP');
        await gw.waitForLine((l) => String(l.msg).startsWith('store breaker open') && gw.lines.indexOf(l) >= linesBefore);
        const coldSent = performance.now();
        const coldRes = await pool.request({ method: 'GET', path: '/v1/x', headers: { 'x-api-key': 'k-cold' } });
        cold = { status: coldRes.statusCode, text: await coldRes.body.text(), ms: performance.now() - coldSent };
        // The outage lasts OUTAGE_MS: that is the scenario, not a wait for something to happen.
        await sleep(stopAt + OUTAGE_MS - performance.now());
        const linesAtCont = gw.lines.length;
        contAt = performance.now();
        redis.signal('SIGCONT');
        // The probe runs every 200 ms and the backlog Redis works through is small: the time it took is reported.
        await gw.waitForLine((l) => String(l.msg).startsWith('store breaker closed') && gw.lines.indexOf(l) >= linesAtCont);
        closedSeenAt = performance.now();
        linesAtClose = gw.lines.length;
        atClose = await scrapeMetrics(gw.adminUrl);
        lagMs = loopLagMaxMs(atClose);
        // Requests sent from here on are decided after the scrape, so the counters' deltas cover them exactly.
        scrapedAt = performance.now();
        await completed(WORKERS * 5);
      } finally {
        running = false;
        redis.signal('SIGCONT');
        await Promise.all(workers);
      }
      // On a busy host the backlog Redis works through after SIGCONT can make five calls in a
      // row miss their deadline, and the breaker opens again on that evidence: then the end
      // state judged below is after it has closed again.
      const reopenedAt = gw.lines.findIndex((l, i) => i >= linesAtClose && String(l.msg).startsWith('store breaker open'));
      if (reopenedAt >= 0) await gw.waitForLine((l) => String(l.msg).startsWith('store breaker closed') && gw.lines.indexOf(l) > reopenedAt);
      const metrics = await scrapeMetrics(gw.adminUrl);
      lagMs = Math.max(lagMs, loopLagMaxMs(metrics));
      const decisions = (text: string, result: string): number => metricValue(text, 'sluice_limit_decisions_total', { result });

      // Everything measured first and reported, so a failure below explains itself.
      const late = decisionsOver(metrics, DECISION_BUDGET_MS, lagMs, windowStart);
      const waited = metricValue(metrics, 'sluice_limit_decision_seconds_count');
      const gaveUp = waited - metricValue(metrics, 'sluice_limit_decision_seconds_count', { source: 'store' });
      const slowest = ['0.05', '0.055', '0.06', '0.07', '0.1', '0.25', '1', '+Inf']
        .map((le) => `<=${le}s:${metricValue(metrics, 'sluice_limit_decision_seconds_bucket', { le })}`).join(' ');
      const during = samples.filter((s) => s.sentAt < contAt && s.doneAt > stopAt);
      const baseline = samples.filter((s) => s.doneAt < stopAt).map((s) => s.doneAt - s.sentAt).sort((a, b) => a - b);
      const latency = during.map((s) => s.doneAt - s.sentAt);
      const maxLatency = Math.max(...latency);
      // For admitted requests the backend's arrival time bounds the decision more tightly: it excludes the way back.
      const toBackend = during.filter((s) => backend.arrivals.has(s.id)).map((s) => backend.arrivals.get(s.id)! - s.sentAt);
      const pct = (q: number): string => baseline[Math.min(baseline.length - 1, Math.floor(q * baseline.length))]!.toFixed(1);
      t.diagnostic(`baseline latency p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${baseline.at(-1)!.toFixed(1)} ms; `
        + `during the outage: ${during.length} requests, max latency ${maxLatency.toFixed(1)} ms, `
        + `max send->backend ${toBackend.length ? Math.max(...toBackend).toFixed(1) : '-'} ms; `
        + `gateway store waits: ${waited} (${gaveUp} timed out) ${slowest}; ${late.over} of the window's ${late.waited} over ${DECISION_BUDGET_MS} ms + 2 x the loop's lag ${lagMs.toFixed(0)} ms (<= ${late.le} s); `
        + `uncached key: ${cold.status} in ${cold.ms.toFixed(1)} ms; breaker closed ${(closedSeenAt - contAt).toFixed(0)} ms after SIGCONT`);

      // 1a. Measured inside the gateway, on its own clock: every request that waited on the
      // store had its decision within the budget, beyond what the gateway's own loop lagged.
      assert.ok(gaveUp > 0, 'some decisions did wait out the timeout (requests in flight at SIGSTOP, the probes)');
      assert.equal(late.over, 0, `${late.over} of ${late.waited} store waits took longer than ${late.boundMs.toFixed(0)} ms`);

      // 1b. At the client, only what timing on a busy machine cannot blur: no request that
      // met the outage waited for the store to come back (a missing deadline would hold it for the outage).
      assert.ok(during.length > 20, `${during.length} requests met the outage`);
      assert.ok(latency.some((l) => l >= TIMEOUT_MS), 'the client saw those waits too');
      assert.ok(maxLatency < OUTAGE_MS, `slowest request during the outage took ${maxLatency.toFixed(1)} ms, as long as the outage`);

      // 1c. A key no gateway has cached needs a lookup the stopped store cannot answer:
      // that too ends at the store timeout, not when the store comes back. (Whether the
      // answer is then 503 or a config-only identity is the auth stage's call; a hang is nobody's.)
      assert.ok(cold.ms < OUTAGE_MS, `an uncached key waited ${cold.ms.toFixed(1)} ms`);
      if (cold.status !== 200) {
        assert.equal(cold.status, 503, cold.text);
        assert.equal((JSON.parse(cold.text) as { error: { code: string } }).error.code, 'unavailable');
      }

      // 2. The failure policy decided, visibly.
      const refused = during.filter((s) => s.status !== 200);
      assert.ok(metricValue(metrics, 'sluice_store_errors_total', { op: 'admit', kind: 'timeout' }) > 0, 'timeouts are counted');
      if (policy === 'open') {
        assert.deepEqual(refused, [], 'fail open: nothing refused');
        assert.ok(decisions(metrics, 'fallback_open') > 50, 'fallback decisions are counted');
      } else {
        assert.ok(refused.length > 50, `fail closed: ${refused.length} refused`);
        assert.deepEqual([...new Set(refused.map((s) => `${s.status} ${s.code}`))], ['503 unavailable']);
        assert.ok(decisions(metrics, 'store_closed') > 50, 'store_closed decisions are counted');
        assert.equal(decisions(metrics, 'fallback_open'), 0);
      }
      assert.equal(metricValue(metrics, 'sluice_store_breaker_open'), 0, 'the breaker gauge is back to 0');

      // 3. Enforcement is back: from the breaker closing on, the store decides. A decision it
      // did not make is one call that missed its deadline (counted as a timeout: a busy
      // host delays the store's answers too), never the breaker skipping the store, unless
      // the breaker opened again on new evidence (its log line gives the reason).
      const after = samples.filter((s) => s.sentAt > scrapedAt);
      assert.ok(after.length >= WORKERS * 3, `${after.length} requests after the breaker closed`);
      const since = (text: string, name: string, labels: Record<string, string>): number => metricValue(text, name, labels) - metricValue(atClose, name, labels);
      const notStore = since(metrics, 'sluice_limit_decisions_total', { result: 'fallback_open' }) + since(metrics, 'sluice_limit_decisions_total', { result: 'store_closed' });
      // Timed out, or expired in Redis before it ran (admit.lua's expires_at): either way one call that failed.
      const timedOut = since(metrics, 'sluice_store_errors_total', { op: 'admit' });
      const reopened = gw.lines.slice(linesAtClose).find((l) => String(l.msg).startsWith('store breaker open'));
      t.diagnostic(`after the breaker closed: ${after.length} requests, ${notStore} not decided by the store, ${timedOut} store calls timed out${reopened === undefined ? '' : `; the breaker opened again: ${String(reopened.reason)}`}`);
      assert.ok(reopened !== undefined || notStore <= timedOut, `${notStore} decisions after the breaker closed were not the store's; ${timedOut} calls timed out`);
      const refusedAfter = after.filter((s) => s.status !== 200);
      assert.ok(refusedAfter.every((s) => policy === 'closed' && s.code === 'unavailable') && refusedAfter.length <= notStore, JSON.stringify(refusedAfter.slice(0, 3)));
      assert.ok(since(metrics, 'sluice_limit_decisions_total', { result: 'allowed' }) >= after.length - notStore, 'the store allowed the rest');
      const client = new Redis(redis.url);
      try {
        // 4. Calls the gateway gave up on still ran when Redis resumed; their leases must not linger.
        await waitUntil(async () => (await client.zcard(k.leases('c-steady'))) === 0, EVENT_TIMEOUT_MS, 'every in-flight lease to be released');
        const counted = Number(await client.hget(k.counters('c-steady'), 'dn'));
        assert.ok(counted >= after.length - notStore, `requests after the outage are counted in Redis (${counted})`);
      } finally {
        client.disconnect();
      }
    });
  });
}

scenario('open');
scenario('closed');

describe('failing open, a fleet of gateways keeps to the plan (fallback buckets sized to each one\'s share)', () => {
  let redis: RedisProcess;
  let backend: TestBackend;
  let gws: GatewayProcess[] = [];
  let pools: Pool[] = [];

  before(async () => {
    redis = await startRedis();
    backend = await startTestBackend();
    const cfg = testConfig({
      upstreams: [backend.url],
      store: { kind: 'redis', url: redis.url, timeout_ms: TIMEOUT_MS, failure_policy: 'open', probe_interval_ms: 200 },
      plans: {
        // Refill too slow to matter: every admission during the outage spends burst.
        share: { rate: 0.01, burst: 20 },
        busy: { rate: 100_000, burst: 100_000 },
      },
      keys: [
        { digest: sha256('k-share'), customer: 'c-share', plan: 'share' },
        { digest: sha256('k-busy'), customer: 'c-busy', plan: 'busy' },
      ],
      log: { access: false },
    });
    gws = await Promise.all([spawnGateway(cfg), spawnGateway(cfg)]);
    pools = gws.map((g) => new Pool(g.url, { connections: 40, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 }));
  });

  after(async () => {
    redis?.signal('SIGCONT');
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(gws.map((g) => g.stop()));
    await backend?.close();
    await redis?.stop();
  });

  const send = async (gw: number, key: string): Promise<number> => {
    const res = await pools[gw]!.request({ method: 'GET', path: '/v1/x', headers: { 'x-api-key': key } });
    await res.body.dump();
    return res.statusCode;
  };

  it('shareOf: 1/n of each limit, never below one unit', () => {
    const p = { rate: 10, burst: 20, quotaDay: 100, quotaMonth: 3, maxInflight: 5 };
    assert.equal(shareOf(p, 1), p);
    assert.deepEqual(shareOf(p, 4), { rate: 2.5, burst: 5, quotaDay: 25, quotaMonth: 1, maxInflight: 1 });
    assert.deepEqual(shareOf({ rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 0 }, 3),
      { rate: 0, burst: 0, quotaDay: 0, quotaMonth: 0, maxInflight: 0 }, 'no limit stays no limit');
    assert.equal(shareOf({ ...p, burst: 2 }, 8).burst, 1);
  });

  it('2 gateways with burst 20 admit 20 in all during an outage, not 20 each', async () => {
    // A count is trusted once it can hold every live peer (3 s after registering); until then the share assumes store.fleet_floor.
    await waitUntil(async () => {
      const sizes = await Promise.all(gws.map(async (g) => metricValue(await scrapeMetrics(g.adminUrl), 'sluice_store_fleet_divisor')));
      return sizes.every((n) => n === 2);
    }, EVENT_TIMEOUT_MS, 'both gateways to count a fleet of 2', 100);

    // Each gateway must know the key already (an auth cache miss meets the stopped store),
    // and each store decision seeds its local bucket with its half of what is left.
    for (let g = 0; g < 2; g++) assert.equal(await send(g, 'k-share'), 200);
    const statuses: number[][] = [[], []];
    try {
      redis.signal('SIGSTOP');
      // The first requests wait out the timeout; five in a row open each breaker. All are decided locally.
      const rest = await Promise.all(Array.from({ length: 60 }, (_, i) => send(i % 2, 'k-share').then((st) => statuses[i % 2]!.push(st))));
      assert.equal(rest.length, 60);
      await Promise.all(gws.map((g) => g.waitForLine((l) => String(l.msg).startsWith('store breaker open'))));
    } finally {
      redis.signal('SIGCONT');
    }
    const admitted = statuses.map((st) => st.filter((x) => x === 200).length);
    assert.deepEqual(statuses.map((st) => st.filter((x) => x !== 200 && x !== 429).length), [0, 0], 'only admissions and 429s');
    // 18 tokens were left after the two warm-up requests (19 after the first, 18 after the
    // second): 9.5 and 9 locally, so 9 each, and 2 + 18 = the burst of 20.
    assert.deepEqual(admitted, [9, 9], `each gateway's local bucket holds half of what the store had left (admitted ${admitted})`);
    for (const g of gws) {
      assert.ok(metricValue(await scrapeMetrics(g.adminUrl), 'sluice_limit_decisions_total', { result: 'fallback_open' }) >= 9);
    }
  });
});
