import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Pool } from 'undici';
import { sha256, testConfig } from '../../test/harness/config.js';
import { spawnGateway, type GatewayProcess } from '../../test/harness/gateway.js';
import { metricValue, scrapeMetrics } from '../../test/harness/metrics.js';
import { startRedis, type RedisProcess } from '../../test/harness/redis.js';
import { startTestBackend, type TestBackend } from '../../test/harness/test-backend.js';
import type { Decision } from '../store/types.js';
import { denialAhead } from './deny-cache.js';

// Issue 6, items 4 and 5 against a real redis-server: an abusive client's refusals cost
// Redis (almost) nothing once it is over its limit; shadow plans decide without
// enforcing; near-limit metrics stay bounded however many customers there are.

const RATE = 2;
const BURST = 2;
/** Requests per hammer: a count, not a time, so a slow host sends as many (it only takes longer). */
const HAMMER_REQUESTS = 800;
const WORKERS = 32;
const MANY = 200;

interface Hammered { sent: number; admitted: number; others: string[]; evalsha: number; seconds: number; sample429: { headers: Record<string, unknown>; body: string } | undefined }

describe('limits: deny cache, shadow plans, near-limit metrics (real Redis)', () => {
  let redis: RedisProcess;
  let backend: TestBackend;
  let gw: GatewayProcess;
  let pool: Pool;
  let client: Redis;

  before(async () => {
    redis = await startRedis();
    backend = await startTestBackend();
    client = new Redis(redis.url);
    const manyKeys = Array.from({ length: MANY }, (_, i) => ({ digest: sha256(`k-many-${i}`), customer: `c-many-${i}`, plan: 'tiny' }));
    gw = await spawnGateway(testConfig({
      upstreams: [backend.url],
      // A generous timeout: this file counts store calls, and a fallback decision would hide one.
      store: { kind: 'redis', url: redis.url, timeout_ms: 2000, failure_policy: 'closed' },
      plans: {
        cached: { rate: RATE, burst: BURST },
        uncached: { rate: RATE, burst: BURST, deny_cache_ms: 0 },
        shadowed: { rate: 0.001, burst: 5, shadow: true },
        near: { rate: 0.001, burst: 10 },
        tiny: { rate: 0.001, burst: 1 },
      },
      keys: [
        { digest: sha256('k-cached'), customer: 'c-cached', plan: 'cached' },
        { digest: sha256('k-uncached'), customer: 'c-uncached', plan: 'uncached' },
        { digest: sha256('k-shadow'), customer: 'c-shadow', plan: 'shadowed' },
        { digest: sha256('k-near'), customer: 'c-near', plan: 'near' },
        ...manyKeys,
      ],
      log: { access: false },
    }));
    pool = new Pool(gw.url, { connections: WORKERS, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000 });
  });

  after(async () => {
    await pool?.close();
    await gw?.stop();
    client?.disconnect();
    await backend?.close();
    await redis?.stop();
  });

  const get = async (key: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> => {
    const res = await pool.request({ method: 'GET', path: '/v1/x', headers: { 'x-api-key': key } });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };

  const evalshaCalls = async (): Promise<number> => {
    const m = /cmdstat_evalsha:calls=(\d+)/.exec(await client.info('commandstats'));
    return m === null ? 0 : Number(m[1]);
  };

  /** WORKERS loops sending back to back until HAMMER_REQUESTS have been sent. */
  const hammer = async (key: string): Promise<Hammered> => {
    await get(key); // auth cache warm: the key lookup is not what is measured
    const before = await evalshaCalls();
    const t0 = performance.now();
    let admitted = 0;
    let sent = 0;
    const others: string[] = [];
    let sample429: Hammered['sample429'];
    await Promise.all(Array.from({ length: WORKERS }, async () => {
      while (sent < HAMMER_REQUESTS) {
        sent++;
        const r = await get(key);
        if (r.status === 200) admitted++;
        else if (r.status === 429 && r.body.includes('"rate_limited"')) sample429 ??= { headers: r.headers, body: r.body };
        else others.push(`${r.status} ${r.body}`);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    return { sent, admitted, others, evalsha: (await evalshaCalls()) - before, seconds, sample429 };
  };

  it('an abusive client is refused from memory: Redis calls per token, not per request', async (t) => {
    const off = await hammer('k-uncached');
    const on = await hammer('k-cached');
    const hits = metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_deny_cache_hits_total');
    const line = (name: string, h: Hammered): string => `${name}: ${h.sent} requests in ${h.seconds.toFixed(2)} s `
      + `(${(h.sent / h.seconds).toFixed(0)}/s), ${h.admitted} admitted, ${h.evalsha} EVALSHA (${(h.evalsha / h.seconds).toFixed(1)}/s)`;
    t.diagnostic(line('deny cache off', off));
    t.diagnostic(line('deny cache on ', on));
    for (const h of [off, on]) {
      assert.deepEqual(h.others, [], 'only 200s and 429 rate_limited');
      // Exactness is unchanged: never more than burst + rate x elapsed (+1 for a token in flight).
      assert.ok(h.admitted <= BURST + RATE * h.seconds + 1, `admitted ${h.admitted}`);
      // ...and nothing is refused while a token is there to take (the cache only ever ends early).
      assert.ok(h.admitted >= BURST + RATE * (h.seconds - 1), `admitted ${h.admitted} of ${BURST} + ${RATE}/s`);
    }
    // Without the cache every request is a store call (plus heartbeats, once a second).
    assert.ok(off.evalsha >= off.sent, `cache off: ${off.evalsha} calls for ${off.sent} requests`);
    // With it: one call per token that comes back (each admits, and proves the bucket empty
    // again), plus the opening volley (the WORKERS first requests all ask: nothing is known
    // yet) and a heartbeat a second.
    const windows = Math.ceil(RATE * on.seconds) + BURST;
    assert.ok(on.evalsha <= windows + WORKERS + Math.ceil(on.seconds) + 2, `cache on: ${on.evalsha} calls for ${windows} windows (${on.sent} requests)`);
    assert.ok(hits >= on.sent - on.evalsha, `deny-cache hits ${hits}`);
    // A remembered refusal says the same as the store's: same JSON, Retry-After, RateLimit r=0 with t.
    const s = on.sample429!;
    assert.equal((JSON.parse(s.body) as { error: { code: string } }).error.code, 'rate_limited');
    assert.ok(Number(s.headers['retry-after']) >= 1, `retry-after ${String(s.headers['retry-after'])}`);
    assert.match(String(s.headers.ratelimit), /^"cached";r=0;t=1$/);
    assert.equal(String(s.headers['ratelimit-policy']), '"cached";q=2;w=1');
  });

  it('in-flight denials are never remembered; the others until they can change', () => {
    const d: Decision = { allowed: false, reason: 'concurrency_limited', remaining: 5, retryAfterMs: 1000, fullInMs: 0,
      dayUsed: 1, monthUsed: 1, inflight: 2, dayResetMs: 5000, monthResetMs: 9000 };
    const p = { rate: 10, burst: 10, quotaDay: 100, quotaMonth: 0, maxInflight: 2 };
    assert.equal(denialAhead(p, d), undefined);
    // A refusal is remembered as the state the store reported: an empty bucket 1 s from full (10/s) has its next token in 100 ms.
    assert.equal(denialAhead(p, { ...d, reason: 'rate_limited', remaining: 0, fullInMs: 1000 })?.retryAfterMs, 100);
    // With costs: 3 tokens refuse a request of 5 units (for 200 ms) but not one of 1.
    const three = { ...d, allowed: true, reason: undefined, remaining: 3, fullInMs: 700 };
    assert.deepEqual([denialAhead(p, three, 5)?.reason, denialAhead(p, three, 5)?.retryAfterMs], ['rate_limited', 200]);
    assert.equal(denialAhead(p, three, 1), undefined);
    // A day quota with 2 left refuses 3 units until the day ends.
    assert.equal(denialAhead(p, { ...three, dayUsed: 98 }, 3)?.retryAfterMs, 5000);
    assert.equal(denialAhead(p, { ...three, dayUsed: 98 }, 2), undefined);
    // Admitted, bucket left with under one token: the next token is (burst - 1) tokens short of full.
    const next = denialAhead(p, { ...d, allowed: true, reason: undefined, remaining: 0, fullInMs: 950 });
    assert.deepEqual([next?.reason, next?.retryAfterMs], ['rate_limited', 50]);
    const quota = denialAhead(p, { ...d, allowed: true, reason: undefined, dayUsed: 100 });
    assert.deepEqual([quota?.reason, quota?.retryAfterMs], ['quota_exceeded', 5000]);
    assert.equal(denialAhead(p, { ...d, allowed: true, reason: undefined, remaining: 3 }), undefined);
  });

  it('a shadow plan over its burst lets everything through and counts each would-be 429', async () => {
    const results = [];
    for (let i = 0; i < 20; i++) results.push(await get('k-shadow'));
    assert.deepEqual(results.map((r) => r.status), Array(20).fill(200));
    // The headers still tell the truth: the bucket is empty after the 5th.
    assert.match(String(results[19]!.headers.ratelimit), /^"shadowed";r=0;t=\d+$/);
    assert.match(String(results[0]!.headers.ratelimit), /^"shadowed";r=4;t=\d+$/);
    const m = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(m, 'sluice_limit_shadow_rejections_total', { plan: 'shadowed', reason: 'rate_limited' }), 15);
    assert.equal(metricValue(m, 'sluice_limit_shadow_rejections_total'), 15);
    assert.equal(metricValue(m, 'sluice_limit_decisions_total', { result: 'shadow' }), 15);
  });

  it('the near-limit counter moves once the bucket has under 20% left', async () => {
    const nearCount = async (): Promise<number> =>
      metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_near_total', { plan: 'near', limit: 'rate' });
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      assert.equal((await get('k-near')).status, 200);
      seen.push(await nearCount());
    }
    // Remaining 9..0 of 10: only 1 and 0 are under 2.
    assert.deepEqual(seen, [0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    assert.equal((await get('k-near')).status, 429);
    assert.equal(await nearCount(), 2, 'a refusal is not a near miss');
    assert.equal(metricValue(await scrapeMetrics(gw.adminUrl), 'sluice_limit_near_subjects', { plan: 'near' }), 1);
  });

  it(`${MANY} customers near their limits add no label values, only counts`, async () => {
    for (let i = 0; i < MANY; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => get(`k-many-${i + j}`)));
      assert.deepEqual(batch.map((r) => r.status), Array(20).fill(200));
    }
    const m = await scrapeMetrics(gw.adminUrl);
    assert.equal(metricValue(m, 'sluice_limit_near_total', { plan: 'tiny', limit: 'rate' }), MANY);
    assert.equal(metricValue(m, 'sluice_limit_near_subjects', { plan: 'tiny' }), MANY);
    const series = m.split('\n').filter((l) => /^sluice_limit_(near|shadow)/.test(l));
    // At most one series per limit kind, plus the gauge, for the plan that has MANY customers.
    assert.ok(series.filter((l) => l.includes('plan="tiny"')).length <= 5, series.join('\n'));
    assert.ok(!series.some((l) => l.includes('c-many') || /customer|subject=/.test(l)), series.join('\n'));
  });
});
